{{ config(materialized='table', tags=['lifecycle', 'marts']) }}

{#- One row per user with first_seen_date <= D: status, facts and RFM as of D (SPEC 4.3, 4.4, 4.6, 5). -#}

{%- set as_of = lifecycle_as_of_date() -%}
{%- set rfm_window_days = lifecycle_int_var('lifecycle__rfm_window_days', 365, 1) -%}
{{- lifecycle_check_list_var('lifecycle__core_events', []) -}}
{%- set core_events = var('lifecycle__core_events', []) -%}

with

users as (
    select *
    from {{ ref('int_lifecycle__user_facts') }}
    where first_seen_date is not null
        and first_seen_date <= {{ as_of }}
),

-- The open run holds the status as of D, since when, and the status before it.
current_runs as (
    select user_id, lifecycle_status, valid_from as status_since, previous_status
    from {{ ref('int_lifecycle__status_runs') }}
    where valid_to is null
        and lifecycle_status is not null
),

-- Activity days in [D-27, D] and [D-6, D].
recent_activity as (
    select
        user_id,
        count(*) as active_days_28,
        sum(case when date_day >= {{ add_days(as_of, -6) }} then 1 else 0 end) as active_days_7
    from {{ ref('int_lifecycle__user_days') }}
    where is_active = 1
        and date_day >= {{ add_days(as_of, -27) }}
        and date_day <= {{ as_of }}
    group by user_id
),

-- Purchases dated in [D - rfm_window_days + 1, D] (SPEC 4.6).
purchases as (
    select
        user_id,
        sum(purchase_count) as frequency,
        sum(revenue) as monetary,
        max(date_day) as last_purchase_date
    from {{ ref('int_lifecycle__user_days') }}
    where purchase_count > 0
        and date_day >= {{ add_days(as_of, 1 - (rfm_window_days | int)) }}
        and date_day <= {{ as_of }}
    group by user_id
),

-- k = purchasers with recency_days >= the user's (or frequency / monetary <= the user's), ties included:
-- the default window frame (range ... current row) counts peers.
ranked as (
    select
        p.*,
        {{ days_between(as_of, 'p.last_purchase_date') }} as recency_days,
        count(*) over () as purchasers,
        count(*) over (order by {{ days_between(as_of, 'p.last_purchase_date') }} desc) as k_recency,
        count(*) over (order by p.frequency) as k_frequency,
        count(*) over (order by p.monetary) as k_monetary
    from purchases as p
),

-- ceil(5 * k / N) in integer arithmetic.
scored as (
    select
        user_id,
        frequency,
        monetary,
        recency_days,
        {{ int_div('5 * k_recency + purchasers - 1', 'purchasers') }} as rfm_recency_score,
        {{ int_div('5 * k_frequency + purchasers - 1', 'purchasers') }} as rfm_frequency_score,
        {{ int_div('5 * k_monetary + purchasers - 1', 'purchasers') }} as rfm_monetary_score
    from ranked
)

select
    u.user_id,
    {{ as_of }} as as_of_date,
    r.lifecycle_status,
    r.status_since,
    r.previous_status,
    u.first_seen_date,
    u.last_active_date,
    coalesce(u.last_active_date, u.first_seen_date) as last_seen_date,
    {{ days_between(as_of, 'coalesce(u.last_active_date, u.first_seen_date)') }} as days_inactive,
    cast(coalesce(a.active_days_7, 0) as integer) as active_days_7,
    cast(coalesce(a.active_days_28, 0) as integer) as active_days_28,
    u.last_churn_signal_date,
    cast(u.subscription_status as {{ text_type() }}) as subscription_status,
    {% if core_events | length == 0 -%}
    cast(null as boolean) as core_feature_adopted,
    {%- else -%}
    coalesce(u.has_core_event, 0) = 1 as core_feature_adopted,
    {%- endif %}
    cast(coalesce(s.frequency, 0) as integer) as purchase_count,
    cast(coalesce(s.monetary, 0) as {{ money_type() }}) as monetary,
    s.recency_days as rfm_recency_days,
    cast(s.rfm_recency_score as integer) as rfm_recency_score,
    cast(s.rfm_frequency_score as integer) as rfm_frequency_score,
    cast(s.rfm_monetary_score as integer) as rfm_monetary_score,
    case
        when s.user_id is null then null
        when s.rfm_recency_score <= 2 and s.rfm_frequency_score <= 2 then 'hibernating'
        when s.rfm_recency_score <= 2 and s.rfm_frequency_score <= 4 then 'at_risk'
        when s.rfm_recency_score <= 2 then 'cant_lose'
        when s.rfm_recency_score = 3 and s.rfm_frequency_score <= 2 then 'about_to_sleep'
        when s.rfm_recency_score = 3 and s.rfm_frequency_score = 3 then 'need_attention'
        when s.rfm_recency_score <= 4 and s.rfm_frequency_score >= 4 then 'loyal'
        when s.rfm_recency_score = 4 and s.rfm_frequency_score = 1 then 'promising'
        when s.rfm_recency_score = 5 and s.rfm_frequency_score = 1 then 'new_customer'
        when s.rfm_frequency_score <= 3 then 'potential_loyalist'
        else 'champions'
    end as rfm_segment
from users as u
left join current_runs as r on r.user_id = u.user_id
left join recent_activity as a on a.user_id = u.user_id
left join scored as s on s.user_id = u.user_id
