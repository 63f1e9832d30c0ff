{{ config(materialized='table', tags=['lifecycle', 'marts']) }}

{#- Users per status per date (SPEC 5), from the runs with +1 / -1 deltas: no user x day spine. -#}

{%- set as_of = lifecycle_as_of_date() -%}

with

runs as (
    select lifecycle_status, valid_from, valid_to
    from {{ ref('int_lifecycle__status_runs') }}
    where lifecycle_status is not null
),

-- A run adds one user to its status on valid_from and removes it the day after valid_to.
deltas as (
    select valid_from as date_day, lifecycle_status, count(*) as users_delta
    from runs
    group by valid_from, lifecycle_status
    union all
    select {{ add_days('valid_to', 1) }}, lifecycle_status, -count(*)
    from runs
    where valid_to is not null
    group by valid_to, lifecycle_status
),

bounds as (
    select min(valid_from) as start_date, {{ as_of }} as end_date
    from runs
),

spine as (
    {{ date_spine('bounds') }}
),

statuses as (
    select 'churned' as lifecycle_status
    union all select 'dormant'
    union all select 'new'
    union all select 'resurrected'
    union all select 'at_risk'
    union all select 'power'
    union all select 'active'
),

daily_deltas as (
    select s.date_day, st.lifecycle_status, coalesce(sum(d.users_delta), 0) as users_delta
    from spine as s
    cross join statuses as st
    left join deltas as d on d.date_day = s.date_day and d.lifecycle_status = st.lifecycle_status
    group by s.date_day, st.lifecycle_status
),

counted as (
    select
        date_day,
        lifecycle_status,
        sum(users_delta) over (partition by lifecycle_status order by date_day rows between unbounded preceding and current row) as users
    from daily_deltas
)

select
    cast(date_day as {{ text_type() }}) || '|' || lifecycle_status as status_day_id,
    date_day as date,
    lifecycle_status,
    cast(users as integer) as users
from counted
where users <> 0
