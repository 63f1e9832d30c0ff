{{ config(
    materialized=lifecycle_incremental(),
    unique_key='date',
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    post_hook=[
        "delete from {{ this }} where date > {{ lifecycle_as_of_date() }} or date < (select coalesce(min(d.date_day), {{ date_literal('9999-12-31') }}) from {{ ref('int_lifecycle__user_days') }} as d where d.is_active = 1)"
    ],
    tags=['lifecycle', 'intermediate']
) }}

-- Read only by incremental runs; dbt (and the runner) take the DAG from a parse with is_incremental() false.
-- depends_on: {{ ref('int_lifecycle__builds') }}
-- depends_on: {{ ref('int_lifecycle__source_days') }}
-- depends_on: {{ ref('int_lifecycle__identity') }}
-- depends_on: {{ ref('int_lifecycle__user_facts') }}

{#
  Duolingo-style growth accounting (SPEC 4.5), one row per date from the earliest activity day to D, with no
  user x day spine: an activity day's state follows from the gap to the previous activity day, and the
  inactive states (at_risk_wau, at_risk_mau, dormant) are intervals after each activity day, counted with
  +1 / -1 deltas over a date spine. The rates' numerators come from each activity day's state the day before,
  which the gaps to the previous two activity days determine. growth_accounting_daily is a view on it.

  Incremental: the dates from changed_from on (see lifecycle_changed_from) are recomputed, the inactive counts
  starting from the stored ones of the day before; the earlier dates keep their rows. A daily run reads the
  activity days of the last mau_days days and those whose next activity ends a dormant stretch since then,
  not the whole history. The post-hook drops dates no longer in [first activity day, D].
-#}

{%- set as_of = lifecycle_as_of_date() -%}
{%- set w = lifecycle_int_var('lifecycle__wau_days', 7, 1) | int -%}
{%- set m = lifecycle_int_var('lifecycle__mau_days', 30, 1) | int -%}
{#- SPEC 4.5 puts every user in exactly one state; with W > M the states overlap (active only on d - M would be
    both at_risk_wau and dormant) and the counts would add up to more than the users. -#}
{%- if w > m -%}
{{ exceptions.raise_compiler_error("The var lifecycle__wau_days (" ~ w ~ ") must not be above lifecycle__mau_days (" ~ m ~ "): a user would be in two growth-accounting states on one day.") }}
{%- endif %}
{%- set states = ['new', 'current', 'reactivated', 'resurrected', 'at_risk_wau', 'at_risk_mau', 'dormant'] -%}

with

{% if is_incremental() %}
prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds'), [ref('int_lifecycle__identity'), ref('int_lifecycle__source_days'), ref('int_lifecycle__user_days'), ref('int_lifecycle__user_facts')]) }}
),

changed as (
{{ lifecycle_changed_from(ref('int_lifecycle__source_days'), ref('int_lifecycle__identity'), ref('int_lifecycle__user_facts'), ref('int_lifecycle__builds')) }}
),

-- The stored day before changed_from: unchanged; its inactive counts carry into the recomputed days and its
-- state counts are the denominators of the first recomputed day's rates.
stored_before as (
    select
        t.date as date_day,
        {% for state in states -%}
        t.{{ state }}_users{% if not loop.last %},{% endif %}
        {% endfor %}
    from {{ this }} as t
    where t.date = (select {{ add_days('c.changed_from', -1) }} from changed as c)
),
{% else %}
-- Everything: from the earliest activity day (see lifecycle_beginning).
changed as (
    select {{ lifecycle_beginning(ref('int_lifecycle__user_days'), ['date_day'], 'x.is_active = 1') }} as changed_from
),

stored_before as (
    select
        c.changed_from as date_day,
        {% for state in states -%}
        0 as {{ state }}_users{% if not loop.last %},{% endif %}
        {% endfor %}
    from changed as c
    where 1 = 0
),
{% endif %}

activity as (
    select
        date_day,
        prev_active_date,
        prev2_active_date,
        next_active_date,
        {{ days_between('date_day', 'prev_active_date') }} as gap_before,
        {{ days_between('next_active_date', 'date_day') }} as gap_after
    from {{ ref('int_lifecycle__user_days') }}
    where is_active = 1
        and date_day is not null
        and date_day <= {{ as_of }}
        -- the days whose deltas can fall on or after changed_from (those before end by changed_from - 1, except
        -- a dormant stretch that the next activity day ends)
        and (
            date_day >= (select {{ add_days('c.changed_from', -m) }} from changed as c)
            or next_active_date >= (select c.changed_from from changed as c)
        )
),

recent_activity as (
    select *
    from activity
    where date_day >= (select c.changed_from from changed as c)
),

-- The state on an activity day: new on the first, else by the gap to the previous activity day.
active_states as (
    select
        date_day,
        case
            when prev_active_date is null then 'new'
            when gap_before <= {{ w - 1 }} then 'current'
            when gap_before <= {{ m - 1 }} then 'reactivated'
            else 'resurrected'
        end as state,
        count(*) as users
    from recent_activity
    group by 1, 2
),

-- After activity day p (next activity n): at_risk_wau on [p+1, p+W-1], at_risk_mau on [p+W, p+M-1],
-- dormant from p+M, each cut at n. Grouped by p and the gap (capped at M+1) first, so the deltas come from a
-- few thousand groups instead of every activity day.
gaps as (
    select
        date_day as p,
        case when gap_after is null or gap_after > {{ m }} then {{ m + 1 }} else gap_after end as g,
        count(*) as users
    from activity
    group by 1, 2
),

inactive_deltas as (
    select {{ add_days('p', 1) }} as date_day, 'at_risk_wau' as state, sum(users) as users_delta
    from gaps where (case when g < {{ w }} then g else {{ w }} end) > 1 group by 1, 2
    union all
    select {{ add_days('p', 'case when g < ' ~ w ~ ' then g else ' ~ w ~ ' end') }}, 'at_risk_wau', -sum(users)
    from gaps where (case when g < {{ w }} then g else {{ w }} end) > 1 group by 1, 2
    union all
    select {{ add_days('p', w) }}, 'at_risk_mau', sum(users)
    from gaps where (case when g < {{ m }} then g else {{ m }} end) > {{ w }} group by 1, 2
    union all
    select {{ add_days('p', 'case when g < ' ~ m ~ ' then g else ' ~ m ~ ' end') }}, 'at_risk_mau', -sum(users)
    from gaps where (case when g < {{ m }} then g else {{ m }} end) > {{ w }} group by 1, 2
    union all
    select {{ add_days('p', m) }}, 'dormant', sum(users)
    from gaps where g > {{ m }} group by 1, 2
    union all
    -- a dormant stretch ends on the next activity day
    select next_active_date, 'dormant', -count(*)
    from activity where gap_after > {{ m }} group by 1, 2
),

-- The deltas from changed_from on, and the stored inactive counts of the day before as deltas on it.
recent_inactive_deltas as (
    select date_day, state, users_delta
    from inactive_deltas
    where date_day >= (select c.changed_from from changed as c)
    {% for state in ['at_risk_wau', 'at_risk_mau', 'dormant'] %}
    union all
    select {{ add_days('b.date_day', 1) }}, '{{ state }}', b.{{ state }}_users from stored_before as b
    {% endfor %}
),

-- From changed_from when the stored mart goes on to the day before it, else from the first activity day.
bounds as (
    select
        coalesce(
            (select {{ add_days('b.date_day', 1) }} from stored_before as b),
            (select min(a.date_day) from recent_activity as a)
        ) as start_date,
        {{ as_of }} as end_date
),

spine as (
    {{ date_spine('bounds') }}
),

inactive_states as (
    select 'at_risk_wau' as state
    union all select 'at_risk_mau'
    union all select 'dormant'
),

inactive_daily as (
    select s.date_day, st.state, coalesce(sum(d.users_delta), 0) as users_delta
    from spine as s
    cross join inactive_states as st
    left join recent_inactive_deltas as d on d.date_day = s.date_day and d.state = st.state
    group by s.date_day, st.state
),

inactive_counts as (
    select
        date_day,
        state,
        sum(users_delta) over (partition by state order by date_day rows between unbounded preceding and current row) as users
    from inactive_daily
),

state_counts as (
    select date_day, state, users from active_states
    union all
    select date_day, state, users from inactive_counts
),

-- Numerators of the rates: each activity day (not a first one) counted under the user's state the day before.
-- Active the day before: the state of that day from the gap before it; else the inactive state of the gap.
retained_users as (
    select
        date_day,
        case
            when gap_before = 1 then
                case
                    when prev2_active_date is null then 'new'
                    when {{ days_between('prev_active_date', 'prev2_active_date') }} <= {{ w - 1 }} then 'current'
                    when {{ days_between('prev_active_date', 'prev2_active_date') }} <= {{ m - 1 }} then 'reactivated'
                    else 'resurrected'
                end
            when gap_before - 1 <= {{ w - 1 }} then 'at_risk_wau'
            when gap_before - 1 <= {{ m - 1 }} then 'at_risk_mau'
            else 'dormant'
        end as state_before,
        count(*) as users
    from recent_activity
    where prev_active_date is not null
    group by 1, 2
),

daily as (
    select
        s.date_day,
        {% for state in states -%}
        {% if not loop.first %}, {% endif %}coalesce(sum(case when c.state = '{{ state }}' then c.users end), 0) as {{ state }}_users
        {% endfor %}
    from spine as s
    left join state_counts as c on c.date_day = s.date_day
    group by s.date_day
),

numerators as (
    select
        s.date_day,
        {% for state in states -%}
        {% if not loop.first %}, {% endif %}coalesce(sum(case when r.state_before = '{{ state }}' then r.users end), 0) as {{ state }}_retained
        {% endfor %}
    from spine as s
    left join retained_users as r on r.date_day = s.date_day
    group by s.date_day
),

-- The denominators of the rates are the day before's counts: the first recomputed day's come from the store.
daily_and_before as (
    select * from daily
    union all
    select * from stored_before
)

select
    d.date_day as date,
    cast(d.new_users as integer) as new_users,
    cast(d.current_users as integer) as current_users,
    cast(d.reactivated_users as integer) as reactivated_users,
    cast(d.resurrected_users as integer) as resurrected_users,
    cast(d.at_risk_wau_users as integer) as at_risk_wau_users,
    cast(d.at_risk_mau_users as integer) as at_risk_mau_users,
    cast(d.dormant_users as integer) as dormant_users,
    cast(d.new_users + d.current_users + d.reactivated_users + d.resurrected_users as integer) as dau,
    cast(d.new_users + d.current_users + d.reactivated_users + d.resurrected_users + d.at_risk_wau_users as integer) as wau,
    cast(d.new_users + d.current_users + d.reactivated_users + d.resurrected_users + d.at_risk_wau_users + d.at_risk_mau_users as integer) as mau,
    {% for pair in [['nurr', 'new'], ['curr', 'current'], ['rurr', 'reactivated'], ['surr', 'resurrected'], ['iwaurr', 'at_risk_wau'], ['reactivation_rate', 'at_risk_mau'], ['resurrection_rate', 'dormant']] -%}
    {% if not loop.first %}, {% endif %}case
        when y.{{ pair[1] }}_users > 0
            then cast(n.{{ pair[1] }}_retained as {{ float_type() }}) / cast(y.{{ pair[1] }}_users as {{ float_type() }})
    end as {{ pair[0] }}
    {% endfor %},
    {{ lifecycle_run_at() }} as _built_at
from daily as d
inner join numerators as n on n.date_day = d.date_day
left join daily_and_before as y on y.date_day = {{ add_days('d.date_day', -1) }}
