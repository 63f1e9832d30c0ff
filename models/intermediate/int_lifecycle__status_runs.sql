{{ config(
    materialized=lifecycle_incremental(),
    unique_key=['user_id', 'valid_from'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    post_hook=["delete from {{ this }} where status_code is null"],
    tags=['lifecycle', 'intermediate']
) }}

-- Read only by incremental runs; dbt (and the runner) take the DAG from a parse with is_incremental() false.
-- depends_on: {{ ref('int_lifecycle__builds') }}
-- depends_on: {{ ref('int_lifecycle__source_days') }}
-- depends_on: {{ ref('int_lifecycle__identity') }}

{#
  Each user's status history as runs of one status (SPEC 4.4), computed from change points instead of a
  user x day spine: a status can only change on a candidate day (first_seen, an activity day a, a+7 and a+28
  where the 7- and 28-day windows lose it, a + at_risk/dormant/churn days when no activity comes first,
  first_seen + new_days, a churn signal, a return day r and r + resurrected_days). The rules are evaluated on
  those days only, with window counts from a sweep line (+1 at a, -1 at a+7 / a+28, running sums), and equal
  consecutive statuses collapse into runs. Cost grows with activity, not with users x days.

  The open run keeps next_change_date, the first candidate day after D: until then the passage of time cannot
  change the status, so an incremental run re-derives only users with changed facts or next_change_date <= D.

  Incremental runs also restart each such user's history instead of re-deriving all of it. A status on a day
  depends only on facts dated up to that day, the identity map and first_seen_date (SPEC 4.4), so it can only
  change from the user's restart_date on: the earliest re-derived (source, day) pair of theirs, or the stored
  next_change_date; from the start when their identity or first_seen_date changed. The sweep rows before the
  restart collapse into one row carrying their sum (the running state there), so the windows only sort the
  recent candidate days; the stored run in force the day before is continued. Only runs that differ from the
  stored ones are written (unique key user_id + valid_from); a stored run that no longer starts a run gets a
  tombstone (null status) that the post-hook deletes.

  Statuses are small integer codes (lifecycle_status_code / lifecycle_status_name): cheaper to sort, compare
  and write than text on millions of runs; the marts decode them.
-#}

{%- set as_of = lifecycle_as_of_date() -%}
{#- The restart date that means "the whole history": before any date a fact can carry (a createdAt of 1899 is
    one; a 1900-01-01 marker cut such a history short and dated its first run 1900-01-01). -#}
{%- set from_the_start = date_literal('0001-01-01') -%}
{%- set new_days = lifecycle_int_var('lifecycle__new_days', 7, 1) -%}
{%- set at_risk_days = lifecycle_int_var('lifecycle__at_risk_days', 7, 1) -%}
{%- set dormant_days = lifecycle_int_var('lifecycle__dormant_days', 30, 1) -%}
{%- set churn_days = lifecycle_int_var('lifecycle__churn_days', 90, 1) -%}
{%- set resurrected_days = lifecycle_int_var('lifecycle__resurrected_days', 7, 1) -%}
{%- set power_days = lifecycle_int_var('lifecycle__power_days', 20, 0) -%}
{%- set decline_min = lifecycle_int_var('lifecycle__decline_min_baseline_days', 6, 0) -%}
{%- set decline_pct = lifecycle_int_var('lifecycle__decline_ratio_pct', 50, 0) -%}
{%- set count_floor = lifecycle_count_floor() | int -%}
{#- The earliest sweep_base: every date up to D stays within the 17 bits of a packed day count (see sweep_facts). -#}
{%- set sweep_floor = add_days(as_of, -131000) -%}

with

{% if is_incremental() %}
prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds'), [ref('int_lifecycle__identity'), ref('int_lifecycle__source_days'), ref('int_lifecycle__user_days'), ref('int_lifecycle__user_facts')]) }}
),

-- Users whose facts were re-derived since the last build (or everyone).
rebuilt_facts as (
{{ lifecycle_rebuilt_rows(ref('int_lifecycle__user_facts'), 'r.user_id, r.first_seen_date, r.previous_first_seen_date') }}
),

-- 1 when a re-derived user's history may have changed at a date nothing records any more: recomputing
-- everyone, or this model skipped a build (a partial build with --select/--exclude) in which user_facts or
-- identity may have changed: their previous_* columns only keep the value before their latest change.
history_lost as (
    select
        case
            when (select p.recompute_all from prior as p) = 1 then 1
            when {{ lifecycle_skipped_builds(ref('int_lifecycle__builds'), [ref('int_lifecycle__user_facts'), ref('int_lifecycle__identity')]) }} then 1
            else 0
        end as flag
),

-- Open runs whose status may change by the passage of time: a filter on the date alone, pushed into the scan.
due_runs as (
    select t.user_id, t.next_change_date
    from {{ this }} as t
    where t.next_change_date <= {{ as_of }}
),

-- Users first seen 131000 days or more before D: their sweep_base may follow D (see sweep_facts), which moves
-- their packed early dates, so they are re-derived from the start on every run (a zeroed clock's few users).
wide_users as (
    select f.user_id
    from {{ ref('int_lifecycle__user_facts') }} as f
    where f.first_seen_date <= {{ sweep_floor }}
),

-- Users whose facts changed, users whose status may change by the passage of time, users with very early dates,
-- or everyone.
affected_users as (
    select f.user_id from rebuilt_facts as f
    {{ union_distinct() }}
    select d.user_id from due_runs as d
    {{ union_distinct() }}
    select t.user_id
    from {{ this }} as t
    where (select p.recompute_all from prior as p) = 1
    {{ union_distinct() }}
    select w.user_id from wide_users as w
),

changed_pairs as (
{{ lifecycle_changed_pairs(ref('int_lifecycle__source_days')) }}
),

-- Sources that moved between users since the last build: their history may be dated anywhere.
remapped as (
    select m.user_id, m.previous_user_id
    from {{ ref('int_lifecycle__identity') }} as m
    where m._built_at > (select p.prior_built_at from prior as p)
),

-- The earliest day each piece of evidence says a user's status may have changed from.
restart_evidence as (
    -- a changed (source, day) pair, by the source's current user
    select
        case when m.source_key is not null then m.user_id when c.source_key like 'u:%' then substr(c.source_key, 3) end as user_id,
        c.event_date as restart_date
    -- a right join, so the few changed pairs are the hash join's build side and the identity scan probes them
    from {{ ref('int_lifecycle__identity') }} as m
    right join changed_pairs as c on m.source_key = c.source_key
    union all
    -- the passage of time: no candidate day lies between the previous D and the stored next_change_date
    select d.user_id, d.next_change_date from due_runs as d
    union all
    -- a source that moved to or from the user
    select m.user_id, {{ from_the_start }} from remapped as m
    union all
    select m.previous_user_id, {{ from_the_start }} from remapped as m
    union all
    -- nothing records when the history changed: every affected user restarts, including a stored user left
    -- without facts whose open run is also due (a due date alone would keep the runs before it)
    select a.user_id, {{ from_the_start }}
    from affected_users as a
    where (select h.flag from history_lost as h) = 1
    union all
    select w.user_id, {{ from_the_start }} from wide_users as w
    union all
    -- a changed first_seen_date moves "new" and every threshold counted from it
    select f.user_id, {{ from_the_start }}
    from rebuilt_facts as f
    where f.first_seen_date is null and f.previous_first_seen_date is not null
        or f.first_seen_date is not null and f.previous_first_seen_date is null
        or f.first_seen_date <> f.previous_first_seen_date
),

-- Each affected user's restart_date; from the start when no evidence dates the change.
restarts as (
    select a.user_id, coalesce(min(e.restart_date), {{ from_the_start }}) as restart_date
    from affected_users as a
    left join restart_evidence as e on e.user_id = a.user_id
    group by a.user_id
),

facts as (
    select f.user_id, f.first_seen_date, f.first_active_date
    from {{ ref('int_lifecycle__user_facts') }} as f
    where f.user_id in (select a.user_id from affected_users as a)
        and f.first_seen_date is not null
),

user_days as (
    select d.user_id, d.date_day, d.is_active, d.has_churn_signal, d.prev_active_date, d.next_active_date, d.floor_next_active_date
    from {{ ref('int_lifecycle__user_days') }} as d
    where d.user_id in (select a.user_id from affected_users as a)
        and d.date_day is not null
),
{% else %}
facts as (
    select f.user_id, f.first_seen_date, f.first_active_date
    from {{ ref('int_lifecycle__user_facts') }} as f
    where f.first_seen_date is not null
),

user_days as (
    select d.user_id, d.date_day, d.is_active, d.has_churn_signal, d.prev_active_date, d.next_active_date, d.floor_next_active_date
    from {{ ref('int_lifecycle__user_days') }} as d
    where d.date_day is not null
),
{% endif %}

-- Each user's day 0 of the packed dates (see `packed` below): the day before their first activity or churn signal,
-- the earliest date packed, so every packed date is a positive count of days, in 1850 as in 2024; but no earlier
-- than 131000 days before D, so that every date up to D fits the 17 bits of a packed day count (a user active
-- more than 358 years before D, e.g. beside a zeroed device clock's 0001-01-01, has those early dates moved to
-- the base: statuses dated before base + the longest threshold may be wrong, every later one is exact).
sweep_facts as (
    select
        user_id,
        first_seen_date,
        first_active_date,
        case when first_base < {{ sweep_floor }} then {{ sweep_floor }} else first_base end as sweep_base
    from (
        select
            f.user_id,
            f.first_seen_date,
            f.first_active_date,
            {{ add_days('case when c.first_churn_date is null or f.first_active_date <= c.first_churn_date then coalesce(f.first_active_date, c.first_churn_date) else c.first_churn_date end', -1) }} as first_base
        from facts as f
        left join (
            select d.user_id, min(d.date_day) as first_churn_date
            from user_days as d
            where d.has_churn_signal = 1
            group by d.user_id
        ) as c on c.user_id = f.user_id
    ) as based
),

-- Activity days with the user's first_seen_date and day 0, so every sweep row carries them.
activity_days as (
    select
        d.user_id,
        d.date_day,
        d.prev_active_date,
        d.next_active_date,
        f.first_seen_date,
        f.sweep_base,
        d.floor_next_active_date as floor_next_date
    from user_days as d
    inner join sweep_facts as f on f.user_id = d.user_id
    where d.is_active = 1
),

-- Users whose 7/28-day counts can matter (see lifecycle_count_floor); the others need no window-edge points.
counted_users as (
    {%- if count_floor > 1 %}
    select distinct user_id
    from activity_days
    where floor_next_date is not null
        and {{ days_between('floor_next_date', 'date_day') }} <= 27
    {%- else %}
    select distinct user_id from activity_days
    {%- endif %}
),

activity as (
    select
        a.user_id,
        a.date_day,
        a.prev_active_date,
        a.next_active_date,
        a.first_seen_date,
        a.sweep_base,
        case when c.user_id is not null then 1 else 0 end as is_counted
    from activity_days as a
    left join counted_users as c on c.user_id = a.user_id
),

churn_signals as (
    select
        d.user_id,
        d.date_day,
        f.first_seen_date,
        f.sweep_base,
        lag(d.date_day) over (partition by d.user_id order by d.date_day) as prev_churn_date
    from user_days as d
    inner join sweep_facts as f on f.user_id = d.user_id
    where d.has_churn_signal = 1
),

-- Return days (SPEC 4.3): an activity day after first_seen whose day before was dormant or churned, with
-- p = the previous activity day (else first_seen): (r - 1) - p >= dormant_days, or a churn signal in [p, r-1].
return_flags as (
    -- a long enough gap ...
    select a.user_id, a.date_day as return_date, a.first_seen_date, a.sweep_base
    from activity as a
    where a.date_day > a.first_seen_date
        and {{ days_between('a.date_day', 'coalesce(a.prev_active_date, a.first_seen_date)') }} - 1 >= {{ dormant_days }}
    union all
    -- ... or else a churn signal inside it: a join from the few churn signals, where a correlated exists made
    -- the warehouse gather every activity day first
    select distinct a.user_id, a.date_day as return_date, a.first_seen_date, a.sweep_base
    from churn_signals as c
    inner join activity as a
        on a.user_id = c.user_id
        and c.date_day >= coalesce(a.prev_active_date, a.first_seen_date)
        and c.date_day < a.date_day
    where a.date_day > a.first_seen_date
        and {{ days_between('a.date_day', 'coalesce(a.prev_active_date, a.first_seen_date)') }} - 1 < {{ dormant_days }}
),

return_days as (
    select r.*, lag(r.return_date) over (partition by r.user_id order by r.return_date) as prev_return_date
    from return_flags as r
),

{#-
  The sweep line carries everything in ONE running sum (one window aggregate instead of four, which is most
  of this model's cost). `packed` holds, from the low bits up:
    bits  0-10  the 7-day count (x1) and the 28-day count (x64): +65 on an activity day, -1 / -64 when it
                leaves a window; both never negative, so they decode without borrow;
    bits 11-27  the latest activity day, as days since the user's sweep_base: each activity day adds its gap to
                the previous one, so the running sum telescopes to the latest;
    bits 28-44  the latest churn signal, the same way;
    bits 45-61  the latest return day, the same way.
-#}

-- The sweep line: one row per candidate day and what changes there (see `packed` above).
sweep as (
    -- an activity day enters both windows and becomes the latest activity ...
    select
        user_id,
        first_seen_date,
        sweep_base,
        date_day as point_date,
        65 * is_counted + 2048 * cast({{ days_between(lifecycle_sweep_day('date_day', 'sweep_base'), lifecycle_sweep_day('coalesce(prev_active_date, sweep_base)', 'sweep_base')) }} as bigint) as packed
    from activity
    union all
    -- ... and leaves the 7-day window 7 days later and the 28-day window 28 days later (counted users only)
    select user_id, first_seen_date, sweep_base, {{ add_days('date_day', 7) }}, -1 from activity where is_counted = 1
    union all
    select user_id, first_seen_date, sweep_base, {{ add_days('date_day', 28) }}, -64 from activity where is_counted = 1
    union all
    -- inactivity thresholds, only when no later activity comes first
    {% for threshold in [at_risk_days, dormant_days, churn_days] %}
    select user_id, first_seen_date, sweep_base, {{ add_days('date_day', threshold) }}, 0
    from activity
    where next_active_date is null or next_active_date > {{ add_days('date_day', threshold) }}
    union all
    {% endfor %}
    -- first_seen, the end of "new", and inactivity thresholds counted from first_seen before any activity
    select user_id, first_seen_date, sweep_base, first_seen_date, 0 from sweep_facts
    union all
    select user_id, first_seen_date, sweep_base, {{ add_days('first_seen_date', new_days) }}, 0 from sweep_facts
    union all
    {% for threshold in [at_risk_days, dormant_days, churn_days] %}
    select user_id, first_seen_date, sweep_base, {{ add_days('first_seen_date', threshold) }}, 0
    from sweep_facts
    where first_active_date is null or first_active_date > {{ add_days('first_seen_date', threshold) }}
    union all
    {% endfor %}
    -- churn signals
    select
        user_id,
        first_seen_date,
        sweep_base,
        date_day,
        268435456 * cast({{ days_between(lifecycle_sweep_day('date_day', 'sweep_base'), lifecycle_sweep_day('coalesce(prev_churn_date, sweep_base)', 'sweep_base')) }} as bigint)
    from churn_signals
    union all
    -- return days start "resurrected", which ends resurrected_days later
    select
        user_id,
        first_seen_date,
        sweep_base,
        return_date,
        35184372088832 * cast({{ days_between(lifecycle_sweep_day('return_date', 'sweep_base'), lifecycle_sweep_day('coalesce(prev_return_date, sweep_base)', 'sweep_base')) }} as bigint)
    from return_days
    union all
    select user_id, first_seen_date, sweep_base, {{ add_days('return_date', resurrected_days) }}, 0 from return_days
),

{% if is_incremental() %}
-- The candidate days from the restart on, and one row on the restart day with the sum of every earlier change:
-- the running sum from there on equals the one over the whole history, and the windows sort only recent rows.
restarted_sweep as (
    select s.user_id, s.first_seen_date, s.sweep_base, s.point_date, s.packed
    from sweep as s
    inner join restarts as r on r.user_id = s.user_id
    where s.point_date >= r.restart_date
    union all
    select s.user_id, max(s.first_seen_date), max(s.sweep_base), r.restart_date, cast(sum(s.packed) as bigint)
    from sweep as s
    inner join restarts as r on r.user_id = s.user_id
    where s.point_date < r.restart_date
    group by s.user_id, r.restart_date
),

-- The stored runs the new ones replace: the run in force the day before the restart, and every later one.
-- Read in three parts, each with a filter the warehouse can check in the scan instead of joining every stored
-- run: the open runs; the closed runs ending after the earliest dated restart; every run of the users
-- restarting from the start (new users, identity or first_seen changes: few).
stored_tail as (
    select t.user_id, t.status_code, t.valid_from, t.valid_to, t.previous_status_code, t.next_change_date, r.restart_date
    from {{ this }} as t
    inner join restarts as r on r.user_id = t.user_id
    where t.valid_to is null
        and t.status_code is not null
    union all
    select t.user_id, t.status_code, t.valid_from, t.valid_to, t.previous_status_code, t.next_change_date, r.restart_date
    from {{ this }} as t
    inner join restarts as r on r.user_id = t.user_id
    where t.valid_to >= (
            select {{ add_days('min(x.restart_date)', -1) }} from restarts as x
            where x.restart_date > {{ from_the_start }}
        )
        and t.valid_to >= {{ add_days('r.restart_date', -1) }}
        and r.restart_date > {{ from_the_start }}
        and t.status_code is not null
    union all
    select t.user_id, t.status_code, t.valid_from, t.valid_to, t.previous_status_code, t.next_change_date, {{ from_the_start }}
    from {{ this }} as t
    where t.user_id in (select r.user_id from restarts as r where r.restart_date = {{ from_the_start }})
        and t.valid_to is not null
        and t.status_code is not null
),

-- That first run: its status is unchanged, and the new runs continue it.
kept_runs as (
    select t.user_id, t.status_code, t.valid_from, t.previous_status_code
    from stored_tail as t
    where t.valid_from < t.restart_date
),

{% endif %}
-- Running state at each candidate day up to D, every change of the day included (see sweep_running_sum).
{%- if is_incremental() %}
{%- set swept = 'restarted_sweep' %}
{%- else %}
{%- set swept = 'sweep' %}
{%- endif %}
point_state as (
{{ sweep_running_sum(swept, as_of) }}
),

point_counts as (
    select
        user_id,
        point_date,
        first_seen_date,
        {{ int_div('state - 2048 * ' ~ int_div('state', 2048), 64) }} as active_days_28,
        state - 2048 * {{ int_div('state', 2048) }} - 64 * {{ int_div('state - 2048 * ' ~ int_div('state', 2048), 64) }} as active_days_7,
        case
            when {{ int_div('state', 2048) }} - 131072 * {{ int_div('state', 268435456) }} > 0
                then {{ add_days('sweep_base', int_div('state', 2048) ~ ' - 131072 * ' ~ int_div('state', 268435456)) }}
        end as last_active_date,
        case
            when {{ int_div('state', 268435456) }} - 131072 * {{ int_div('state', 35184372088832) }} > 0
                then {{ add_days('sweep_base', int_div('state', 268435456) ~ ' - 131072 * ' ~ int_div('state', 35184372088832)) }}
        end as last_churn_signal_date,
        case
            when {{ int_div('state', 35184372088832) }} > 0
                then {{ add_days('sweep_base', int_div('state', 35184372088832)) }}
        end as last_return_date
    from point_state
),

-- SPEC 4.4 with D = the candidate day; the first rule that holds wins.
point_status as (
    select
        user_id,
        point_date,
        case
            when last_churn_signal_date is not null
                and last_churn_signal_date >= coalesce(last_active_date, first_seen_date) then {{ lifecycle_status_code('churned') }}
            when {{ days_between('point_date', 'coalesce(last_active_date, first_seen_date)') }} >= {{ churn_days }} then {{ lifecycle_status_code('churned') }}
            when {{ days_between('point_date', 'coalesce(last_active_date, first_seen_date)') }} >= {{ dormant_days }} then {{ lifecycle_status_code('dormant') }}
            when {{ days_between('point_date', 'first_seen_date') }} < {{ new_days }} then {{ lifecycle_status_code('new') }}
            when last_return_date is not null
                and {{ days_between('point_date', 'last_return_date') }} < {{ resurrected_days }} then {{ lifecycle_status_code('resurrected') }}
            when {{ days_between('point_date', 'coalesce(last_active_date, first_seen_date)') }} >= {{ at_risk_days }} then {{ lifecycle_status_code('at_risk') }}
            when active_days_28 - active_days_7 >= {{ decline_min }}
                and 300 * active_days_7 <= {{ decline_pct }} * (active_days_28 - active_days_7) then {{ lifecycle_status_code('at_risk') }}
            when active_days_28 >= {{ power_days }} then {{ lifecycle_status_code('power') }}
            else {{ lifecycle_status_code('active') }}
        end as status_code
    from point_counts
    where point_date >= first_seen_date
),

{% if is_incremental() %}
-- The kept run goes first, with its own previous status; the restarted days follow it.
status_points as (
    select s.user_id, s.point_date, s.status_code, cast(null as integer) as kept_previous_status_code, 0 as is_kept
    from point_status as s
    union all
    select k.user_id, k.valid_from, k.status_code, k.previous_status_code, 1
    from kept_runs as k
),

-- A run starts where the status differs from the previous candidate day's (and at the kept run).
run_starts as (
    select
        user_id,
        point_date as valid_from,
        status_code,
        case when is_kept = 1 then kept_previous_status_code else previous_status_code end as previous_status_code
    from (
        select
            s.*,
            lag(s.status_code) over (partition by s.user_id order by s.point_date) as previous_status_code
        from status_points as s
    ) as flagged
    where is_kept = 1 or previous_status_code is null or previous_status_code <> status_code
),
{% else %}
-- A run starts where the status differs from the previous candidate day's.
run_starts as (
    select user_id, point_date as valid_from, status_code, previous_status_code
    from (
        select
            s.*,
            lag(s.status_code) over (partition by s.user_id order by s.point_date) as previous_status_code
        from point_status as s
    ) as flagged
    where previous_status_code is null or previous_status_code <> status_code
),
{% endif %}

-- The first candidate day after D: the earliest day the passage of time alone could change the status.
next_change as (
    select user_id, min(point_date) as next_change_date
    from sweep
    where point_date > {{ as_of }}
    group by user_id
),

runs as (
    select
        r.user_id,
        r.status_code,
        r.valid_from,
        {{ add_days('lead(r.valid_from) over (partition by r.user_id order by r.valid_from)', -1) }} as valid_to,
        r.previous_status_code
    from run_starts as r
),

-- Only the open run carries next_change_date: joined on those runs alone, not on every run of the history.
final as (
    select
        r.user_id,
        r.status_code,
        r.valid_from,
        r.valid_to,
        r.previous_status_code,
        cast(null as date) as next_change_date
    from runs as r
    where r.valid_to is not null
    union all
    select
        r.user_id,
        r.status_code,
        r.valid_from,
        r.valid_to,
        r.previous_status_code,
        n.next_change_date
    from runs as r
    left join next_change as n on n.user_id = r.user_id
    where r.valid_to is null
)

{% if is_incremental() %}
-- Runs that are new or differ from the stored run starting the same day ...
select
    f.user_id,
    f.status_code,
    f.valid_from,
    f.valid_to,
    f.previous_status_code,
    f.next_change_date,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all
from final as f
left join stored_tail as t on t.user_id = f.user_id and t.valid_from = f.valid_from
where t.user_id is null
    or t.status_code <> f.status_code
    or coalesce(t.valid_to, {{ date_literal('9999-12-31') }}) <> coalesce(f.valid_to, {{ date_literal('9999-12-31') }})
    or coalesce(t.previous_status_code, 0) <> coalesce(f.previous_status_code, 0)
    or coalesce(t.next_change_date, {{ date_literal('9999-12-31') }}) <> coalesce(f.next_change_date, {{ date_literal('9999-12-31') }})
union all
-- ... and a tombstone for each stored run that no longer starts a run (users without a first_seen_date any
-- more lose them all); the post-hook deletes tombstones once they have replaced the stored rows.
select
    t.user_id,
    cast(null as integer),
    t.valid_from,
    cast(null as date),
    cast(null as integer),
    cast(null as date),
    {{ lifecycle_run_at() }},
    {{ lifecycle_recomputed_all() }}
from stored_tail as t
left join final as f on f.user_id = t.user_id and f.valid_from = t.valid_from
where f.user_id is null
{% else %}
select
    f.*,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all
from final as f
{% endif %}
