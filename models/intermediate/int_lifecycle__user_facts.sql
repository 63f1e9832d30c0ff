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
  One row per user with the facts of SPEC 4.3 that do not move with D by themselves: first_seen_date,
  first and last activity day, last churn signal, core feature use and the latest plan value. Re-derived for
  the users whose days changed; a user left without days keeps a row with a null first_seen_date (tombstone).
  A re-derived row keeps the first_seen_date it replaced (previous_first_seen_date): the daily marts recompute
  from the earlier of the two (see lifecycle_changed_from).
-#}

with

{% if is_incremental() %}
prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds'), [ref('int_lifecycle__user_days')]) }}
),

-- Users whose days were re-derived since this model's last build. user_days rewrites every row of such a user
-- (delete+insert by user_id), so their days are exactly the rows built since (see lifecycle_rebuilt_rows).
affected_users as (
    select d.user_id from (
{{ lifecycle_rebuilt_rows(ref('int_lifecycle__user_days'), 'r.user_id') }}
    ) as d
    {{ union_distinct() }}
    select t.user_id from {{ this }} as t
    where (select p.recompute_all from prior as p) = 1
),

days as (
{{ lifecycle_rebuilt_rows(ref('int_lifecycle__user_days'), 'r.*', 'r.date_day is not null') }}
),
{% else %}
days as (
    select d.*
    from {{ ref('int_lifecycle__user_days') }} as d
    where d.date_day is not null
),
{% endif %}

-- The user's latest plan value (by timestamp, received_at, id) over all their days.
plans as (
    select user_id, plan_value
    from (
        select
            d.user_id,
            d.plan_value,
            row_number() over (
                partition by d.user_id
                order by d.plan_event_at desc, d.plan_received_at desc nulls last, {{ binary_text('d.plan_id') }} desc
            ) as pick
        from days as d
        where d.plan_value is not null
    ) as ranked
    where pick = 1
),

facts as (
    select
        user_id,
        -- SPEC 4.3: earliest event or identify date, or an earlier createdAt / created_at literal date
        min(case when has_event = 1 or has_identify = 1 then date_day end) as first_event_date,
        min(created_at_date) as created_at_date,
        min(case when is_active = 1 then date_day end) as first_active_date,
        max(case when is_active = 1 then date_day end) as last_active_date,
        max(case when has_churn_signal = 1 then date_day end) as last_churn_signal_date,
        max(has_core_event) as has_core_event
    from days
    group by user_id
),

final as (
    select
        f.user_id,
        case
            when f.created_at_date is not null and (f.first_event_date is null or f.created_at_date < f.first_event_date)
                then f.created_at_date
            else f.first_event_date
        end as first_seen_date,
        f.first_active_date,
        f.last_active_date,
        f.last_churn_signal_date,
        f.has_core_event,
        p.plan_value as subscription_status
    from facts as f
    left join plans as p on p.user_id = f.user_id
)

{% if is_incremental() %}
select
    a.user_id,
    f.first_seen_date,
    f.first_active_date,
    f.last_active_date,
    f.last_churn_signal_date,
    f.has_core_event,
    f.subscription_status,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all,
    t.first_seen_date as previous_first_seen_date
from affected_users as a
left join final as f on f.user_id = a.user_id
left join (
    select s.user_id, s.first_seen_date
    from {{ this }} as s
    where s.user_id in (select u.user_id from affected_users as u)
) as t on t.user_id = a.user_id
{% else %}
select
    f.*,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all,
    cast(null as date) as previous_first_seen_date
from final as f
{% endif %}
