{{ config(
    materialized=lifecycle_incremental(),
    unique_key='date',
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    post_hook=[
        "delete from {{ this }} where date > {{ lifecycle_as_of_date() }} or date < (select coalesce(min(r.valid_from), {{ date_literal('9999-12-31') }}) from {{ ref('int_lifecycle__status_runs') }} as r where r.status_code is not null)"
    ],
    tags=['lifecycle', 'intermediate']
) }}

-- Read only by incremental runs; dbt (and the runner) take the DAG from a parse with is_incremental() false.
-- depends_on: {{ ref('int_lifecycle__builds') }}
-- depends_on: {{ ref('int_lifecycle__source_days') }}
-- depends_on: {{ ref('int_lifecycle__identity') }}
-- depends_on: {{ ref('int_lifecycle__user_facts') }}

{#
  Users per status per date (SPEC 5), from the runs with +1 / -1 deltas: no user x day spine. status_daily is
  a view on it.

  Incremental: the dates from changed_from on (see lifecycle_changed_from) are recomputed, starting from the
  stored counts of the day before; the earlier dates keep their rows. So a daily run reads the runs that start
  or end since then, not every run of the history. The post-hook drops dates no longer in [first day, D]:
  a date left without any user has no row to replace it (only non-zero rows are kept).
-#}

{%- set as_of = lifecycle_as_of_date() -%}

with

{% if is_incremental() %}
prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds'), [ref('int_lifecycle__identity'), ref('int_lifecycle__source_days'), ref('int_lifecycle__status_runs'), ref('int_lifecycle__user_facts')]) }}
),

changed as (
{{ lifecycle_changed_from(ref('int_lifecycle__source_days'), ref('int_lifecycle__identity'), ref('int_lifecycle__user_facts'), ref('int_lifecycle__builds')) }}
),

-- Users per status on the day before changed_from: unchanged, and where the recomputed counts start.
base as (
    select t.lifecycle_status, t.users
    from {{ this }} as t
    where t.date = (select {{ add_days('c.changed_from', -1) }} from changed as c)
),
{% else %}
-- Everything: from the first day of the earliest status run (see lifecycle_beginning).
changed as (
    select {{ lifecycle_beginning(ref('int_lifecycle__status_runs'), ['valid_from'], 'x.status_code is not null') }} as changed_from
),

base as (
    select cast(null as {{ text_type() }}) as lifecycle_status, 0 as users
    from changed
    where 1 = 0
),
{% endif %}

-- Runs that start on or after changed_from or end the day before it or later.
runs as (
    select r.status_code, r.valid_from, r.valid_to
    from {{ ref('int_lifecycle__status_runs') }} as r
    where r.status_code is not null
        and (
            r.valid_from >= (select c.changed_from from changed as c)
            or r.valid_to >= (select {{ add_days('c.changed_from', -1) }} from changed as c)
        )
),

-- A run adds one user to its status on valid_from and removes it the day after valid_to; the stored counts
-- enter as deltas on changed_from. Runs are counted by status code and named once per day and status.
deltas as (
    select date_day, {{ lifecycle_status_name('status_code') }} as lifecycle_status, users_delta
    from (
        select valid_from as date_day, status_code, count(*) as users_delta
        from runs
        where valid_from >= (select c.changed_from from changed as c)
        group by valid_from, status_code
        union all
        select {{ add_days('valid_to', 1) }}, status_code, -count(*)
        from runs
        where valid_to >= (select {{ add_days('c.changed_from', -1) }} from changed as c)
        group by valid_to, status_code
    ) as run_deltas
    union all
    select c.changed_from, b.lifecycle_status, b.users
    from base as b
    cross join changed as c
),

bounds as (
    select min(date_day) as start_date, {{ as_of }} as end_date
    from deltas
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
    {{ date_text('date_day') }} || '|' || lifecycle_status as status_day_id,
    date_day as date,
    lifecycle_status,
    cast(users as integer) as users,
    {{ lifecycle_run_at() }} as _built_at
from counted
where users <> 0
