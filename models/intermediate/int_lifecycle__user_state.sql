{{ config(
    materialized=lifecycle_incremental(),
    unique_key='user_id',
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    tags=['lifecycle', 'intermediate']
) }}

-- Read only by incremental runs; dbt (and the runner) take the DAG from a parse with is_incremental() false.
-- depends_on: {{ ref('int_lifecycle__builds') }}

{#
  Everything of user_lifecycle that does not move by itself when D advances (SPEC 4.3, 4.4, 4.6, 5): the
  status of the open run, the activity facts, purchases in the RFM window and the RFM scores and segment.
  user_lifecycle is a view that adds what moves every day: as_of_date, days_inactive, rfm_recency_days, and
  the 7/28-day counts from int_lifecycle__recent_activity. So a daily run rewrites only the rows that can have
  changed instead of every user.

  Incremental: a user is re-derived when their facts or status runs were re-derived in this run, or when their
  RFM values or scores differ from the stored ones (scores are ranks over all purchasers, computed for all of
  them: one narrow aggregate). A re-derived user without facts keeps a tombstone row (null first_seen_date).
-#}

{%- set as_of = lifecycle_as_of_date() -%}
{%- set rfm_window_days = lifecycle_int_var('lifecycle__rfm_window_days', 365, 1) -%}
{{- lifecycle_check_list_var('lifecycle__core_events', []) -}}
{%- set core_events = var('lifecycle__core_events', []) -%}

with

{% if is_incremental() %}
prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds'), [ref('int_lifecycle__status_runs'), ref('int_lifecycle__user_days'), ref('int_lifecycle__user_facts')]) }}
),
{% endif %}

-- Purchases dated in [D - rfm_window_days + 1, D] (SPEC 4.6), for every purchaser: the scores are ranks.
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
-- all purchasers but those ranked above the user in descending order (rank() counts them, ties share a rank).
-- A rank needs no window frame, which Redshift requires on an ordered count. Ordering by the last purchase date
-- is ordering by recency_days reversed.
ranked as (
    select
        p.*,
        count(*) over () as purchasers,
        count(*) over () + 1 - rank() over (order by p.last_purchase_date desc) as k_recency,
        count(*) over () + 1 - rank() over (order by p.frequency desc) as k_frequency,
        count(*) over () + 1 - rank() over (order by p.monetary desc) as k_monetary
    from purchases as p
),

-- ceil(5 * k / N) in integer arithmetic.
scored as (
    select
        user_id,
        cast(frequency as integer) as frequency,
        cast(monetary as {{ money_type() }}) as monetary,
        last_purchase_date,
        cast({{ int_div('5 * k_recency + purchasers - 1', 'purchasers') }} as integer) as rfm_recency_score,
        cast({{ int_div('5 * k_frequency + purchasers - 1', 'purchasers') }} as integer) as rfm_frequency_score,
        cast({{ int_div('5 * k_monetary + purchasers - 1', 'purchasers') }} as integer) as rfm_monetary_score
    from ranked
),

{% if is_incremental() %}

-- Monetary and the last purchase date are not compared: they only change with a new or late purchase (the
-- user's facts are then re-derived) or a purchase leaving the window (the frequency drops too). Not reading
-- them keeps this a narrow scan.
stored as (
    select
        t.user_id,
        t.purchase_count,
        t.rfm_recency_score,
        t.rfm_frequency_score,
        t.rfm_monetary_score
    from {{ this }} as t
),

-- Runs re-derived since this model's last build (see lifecycle_rebuilt_rows).
rederived_runs as (
{{ lifecycle_rebuilt_rows(ref('int_lifecycle__status_runs'), 'r.user_id, r.status_code, r.valid_from, r.valid_to, r.previous_status_code') }}
),

affected_users as (
    -- facts or status re-derived in this run (both carry this run's build time)
    select f.user_id from (
{{ lifecycle_rebuilt_rows(ref('int_lifecycle__user_facts'), 'r.user_id') }}
    ) as f
    {{ union_distinct() }}
    select r.user_id from rederived_runs as r
    {{ union_distinct() }}
    -- RFM values or scores changed
    select s.user_id
    from scored as s
    -- stored purchasers only: a smaller hash table, and a user missing there is new to the ranks anyway
    left join (select * from stored where rfm_recency_score is not null) as t on t.user_id = s.user_id
    where t.user_id is null
        or t.purchase_count <> s.frequency
        or t.rfm_recency_score <> s.rfm_recency_score
        or t.rfm_frequency_score <> s.rfm_frequency_score
        or t.rfm_monetary_score <> s.rfm_monetary_score
    {{ union_distinct() }}
    -- no purchase in the window any more
    select t.user_id
    from stored as t
    where t.rfm_recency_score is not null
        and t.user_id not in (select s.user_id from scored as s)
    {{ union_distinct() }}
    select t.user_id
    from stored as t
    where (select p.recompute_all from prior as p) = 1
),

users as (
    select f.*
    from {{ ref('int_lifecycle__user_facts') }} as f
    where f.user_id in (select a.user_id from affected_users as a)
        and f.first_seen_date is not null
        and f.first_seen_date <= {{ as_of }}
),

{% else %}

users as (
    select f.*
    from {{ ref('int_lifecycle__user_facts') }} as f
    where f.first_seen_date is not null
        and f.first_seen_date <= {{ as_of }}
),

{% endif %}

-- The open run holds the status as of D, since when, and the status before it.
{% if is_incremental() %}
-- status_runs rewrites only the runs that changed, so a user whose open run was not rewritten keeps their stored
-- status (the open run it came from is the same), and the other users' open runs need no search through every
-- run.
rederived_open_runs as (
    select
        r.user_id,
        {{ lifecycle_status_name('r.status_code') }} as lifecycle_status,
        r.valid_from as status_since,
        {{ lifecycle_status_name('r.previous_status_code') }} as previous_status
    from rederived_runs as r
    where r.valid_to is null
        and r.status_code is not null
),

current_runs as (
    select o.user_id, o.lifecycle_status, o.status_since, o.previous_status
    from rederived_open_runs as o
    union all
    select t.user_id, t.lifecycle_status, t.status_since, t.previous_status
    from {{ this }} as t
    where (select p.recompute_all from prior as p) = 0
        and t.lifecycle_status is not null
        and t.user_id in (select a.user_id from affected_users as a)
        and t.user_id not in (select o.user_id from rederived_open_runs as o)
),
{% else %}
current_runs as (
    select
        r.user_id,
        {{ lifecycle_status_name('r.status_code') }} as lifecycle_status,
        r.valid_from as status_since,
        {{ lifecycle_status_name('r.previous_status_code') }} as previous_status
    from {{ ref('int_lifecycle__status_runs') }} as r
    where r.valid_to is null
        and r.status_code is not null
),
{% endif %}

final as (
    select
        u.user_id,
        r.lifecycle_status,
        r.status_since,
        r.previous_status,
        u.first_seen_date,
        u.last_active_date,
        u.last_churn_signal_date,
        cast(u.subscription_status as {{ text_type() }}) as subscription_status,
        {% if core_events | length == 0 -%}
        cast(null as boolean) as core_feature_adopted,
        {%- else -%}
        coalesce(u.has_core_event, 0) = 1 as core_feature_adopted,
        {%- endif %}
        cast(coalesce(s.frequency, 0) as integer) as purchase_count,
        cast(coalesce(s.monetary, 0) as {{ money_type() }}) as monetary,
        s.last_purchase_date,
        s.rfm_recency_score,
        s.rfm_frequency_score,
        s.rfm_monetary_score,
        -- the R x F grid (SPEC 4.6)
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
    left join scored as s on s.user_id = u.user_id
)

{#- An incremental run writes every affected user: a user left without facts gets a tombstone row. #}
select
    {% if is_incremental() %}a.user_id{% else %}f.user_id{% endif %},
    f.lifecycle_status,
    f.status_since,
    f.previous_status,
    f.first_seen_date,
    f.last_active_date,
    f.last_churn_signal_date,
    f.subscription_status,
    f.core_feature_adopted,
    f.purchase_count,
    f.monetary,
    f.last_purchase_date,
    f.rfm_recency_score,
    f.rfm_frequency_score,
    f.rfm_monetary_score,
    cast(f.rfm_segment as {{ text_type() }}) as rfm_segment,
    {{ lifecycle_run_at() }} as _built_at
{% if is_incremental() %}
from affected_users as a
left join final as f on f.user_id = a.user_id
{% else %}
from final as f
{% endif %}
