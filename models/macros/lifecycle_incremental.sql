{#-
  The materialization of the package's incremental models. dbt-bigquery has no delete+insert strategy (it takes
  merge, insert_overwrite and microbatch only), and a merge cannot replace a model's many rows per key nor drop
  its tombstones: there the models are rebuilt as tables on every run (the same rows, a full recompute's cost).
-#}
{% macro lifecycle_incremental() %}{{ return(adapter.dispatch('lifecycle_incremental', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__lifecycle_incremental() %}{{ return('incremental') }}{% endmacro %}

{% macro bigquery__lifecycle_incremental() %}{{ return('table') }}{% endmacro %}

{#-
  The body of a `prior` CTE for incremental models: the build that last wrote {{ this }} (its D and time) and
  `recompute_all` = 1 unless that build used the same config and a D not after this run's, and no model in
  `upstream` recomputed everything since. `builds` is ref('int_lifecycle__builds'), passed in so that the
  dependency is visible in the model file; `upstream` lists the incremental models this one reads changes from.
  A model that recomputed everything (a full build, or one of its own runs that recomputed all) says so on the
  rows it wrote (`_recomputed_all`): what it rewrote then no longer tells which of them changed (tombstones and
  previous_* values are gone), so the models downstream must recompute everything too. The runner also notes
  such models itself (cdp_lifecycle_pending_rebuilds); dbt does not (`dbt run --full-refresh -s <model>`).
-#}
{% macro lifecycle_prior_build(builds, upstream=[]) -%}
    select
        max(b.as_of_date) as prior_as_of_date,
        max(b.built_at) as prior_built_at,
        case
            when count(*) = 1
                and max(b.config_fingerprint) = {{ lifecycle_config_fingerprint() }}
                and max(b.as_of_date) <= {{ lifecycle_as_of_date() }}
                {%- for relation in upstream %}
                and not exists (
                    select 1 from {{ relation }} as x
                    where x._built_at > (select max(t._built_at) from {{ this }} as t)
                        and x._recomputed_all = 1
                )
                {%- endfor %}
                then 0
            else 1
        end as recompute_all
    from {{ builds }} as b
    where b.built_at = (select max(t._built_at) from {{ this }} as t)
{%- endmacro %}

{#-
  The `_recomputed_all` column of the rows an incremental model writes (needs the `prior` CTE when
  incremental): 1 when this build recomputed everything, read by lifecycle_prior_build downstream.
-#}
{% macro lifecycle_recomputed_all() -%}
cast({% if is_incremental() %}(select p.recompute_all from prior as p){% else %}1{% endif %} as integer)
{%- endmacro %}

{#-
  The body of a `watermark` CTE: raw rows received after `received_after` are new to an incremental model.
  Each build stores, on the rows it writes, its cutoff (the newest received_at of `raw_models` minus
  lifecycle__lookback_hours) and how many raw rows were received up to it (lifecycle_watermark_state). The next
  run reads the rows received after that cutoff, and first counts the rows received up to it again: raw tables
  are append-only, so a larger count means rows landed since with an older received_at than the lookback
  covers (a backfill with `load`, a destination catching up after an outage), and then everything is read
  again, so an incremental build still equals a full refresh. So does recomputing all, and a build without a
  stored cutoff (the first incremental run after an upgrade). A row without a received_at is never after the
  cutoff: it counts as received up to it, so a new one also makes the run read everything, and such a run
  reads those rows too (lifecycle_reads_all, lifecycle_received_new).
  Each build also stores the newest received_at it saw (watermark_seen_at, before the lookback) and how many
  rows were received up to it: fewer now means raw rows were deleted (a user erased on request), in the
  history or the lookback window, and then everything is read again too, and the stored rows no raw row
  supports any more are removed (int_lifecycle__source_days, int_lifecycle__identity). Only fewer: rows a
  loader commits late inside the lookback window are the normal case, and are read anyway; so a deletion and
  such a row can cancel out, which both models cover by looking at what the rows after the watermark decided
  anyway (source_days' recent pairs, identity's recently decided mappings).
-#}
{% macro lifecycle_watermark(raw_models) -%}
    select
        case
            when (select p.recompute_all from prior as p) = 1 then {{ timestamp_literal('1900-01-01 00:00:00+00:00') }}
            when w.cutoff is null or w.rows_seen is null then {{ timestamp_literal('1900-01-01 00:00:00+00:00') }}
            when w.rows_seen <> ({{ lifecycle_rows_received_up_to(raw_models, 'w.cutoff') }}) then {{ timestamp_literal('1900-01-01 00:00:00+00:00') }}
            when w.seen_rows > ({{ lifecycle_rows_received_up_to(raw_models, 'w.seen_at') }}) then {{ timestamp_literal('1900-01-01 00:00:00+00:00') }}
            else w.cutoff
        end as received_after
    from (
        -- every row a build writes carries the same cutoff: those of the newest build (prior's) are the latest
        select
            max(t.watermark_cutoff) as cutoff,
            max(t.watermark_rows) as rows_seen,
            max(t.watermark_seen_at) as seen_at,
            max(t.watermark_seen_rows) as seen_rows
        from {{ this }} as t
        where t._built_at = (select p.prior_built_at from prior as p)
    ) as w
{%- endmacro %}

{#- True when the run reads every raw row (needs the `watermark` CTE). -#}
{% macro lifecycle_reads_all() -%}
(select w.received_after from watermark as w) = {{ timestamp_literal('1900-01-01 00:00:00+00:00') }}
{%- endmacro %}

{#-
  The condition that a raw row is new to an incremental model (needs the `watermark` CTE): received after the
  watermark, or any row when the model reads everything (also those without a received_at or with one at or
  before the 1900-01-01 that stands for "everything").
-#}
{% macro lifecycle_received_new(received_at) -%}
({{ received_at }} > (select w.received_after from watermark as w) or {{ lifecycle_reads_all() }})
{%- endmacro %}

{#- How many rows of `raw_models` were received up to `cutoff` (a SQL expression), rows without one included. -#}
{% macro lifecycle_rows_received_up_to(raw_models, cutoff) -%}
{% for m in raw_models -%}
{% if not loop.first %} + {% endif %}{{ count_received_up_to(ref(m), 'received_at', cutoff) }}
{%- endfor %}
{%- endmacro %}

{#-
  The body of a CTE with the values lifecycle_watermark reads on the next run: the newest received_at of
  `raw_models` (or the build's start if that is earlier) as seen_at, the cutoff (seen_at minus
  lifecycle__lookback_hours), and the number of raw rows received up to each, all from this statement's
  snapshot of the raw tables.
-#}
{% macro lifecycle_watermark_state(raw_models) -%}
{%- set lookback = lifecycle_int_var('lifecycle__lookback_hours', 24, 0) -%}
    select
        c.cutoff as watermark_cutoff,
        cast({{ lifecycle_rows_received_up_to(raw_models, 'c.cutoff') }} as bigint) as watermark_rows,
        c.seen_at as watermark_seen_at,
        cast({{ lifecycle_rows_received_up_to(raw_models, 'c.seen_at') }} as bigint) as watermark_seen_rows
    from (
        select n.seen_at, {{ sub_hours('n.seen_at', lookback) }} as cutoff
        from (
            -- a received_at after this build started (a loader's clock, a test row) must not become the cutoff:
            -- every row landed later with a present received_at would count as late and make each run read
            -- everything
            select case when max(r.received_at) > {{ lifecycle_run_at() }} then {{ lifecycle_run_at() }} else max(r.received_at) end as seen_at
            from (
                {% for m in raw_models -%}
                {% if not loop.first %}union all {% endif %}select max(x.received_at) as received_at from {{ ref(m) }} as x
                {% endfor -%}
            ) as r
        ) as n
    ) as c
{%- endmacro %}

{#- The source of an event: its user id when present, else its anonymous id; null when it has neither. -#}
{% macro lifecycle_source_key(user_col, anonymous_col) -%}
case
    when nullif({{ user_col }}, '') is not null then 'u:' || {{ user_col }}
    when nullif({{ anonymous_col }}, '') is not null then 'a:' || {{ anonymous_col }}
end
{%- endmacro %}

{#-
  The body of a `changed` CTE for the daily marts (needs the `prior` CTE): changed_from, the first date whose
  row may differ from the stored one. A user's status and activity on a day depend only on facts dated up to
  that day, their identity and their first_seen_date, so rows before the earliest of these stay as they are:
  - the day after the previous D (days the stored mart does not have yet; time-only changes come after it);
  - the date of every (source, day) pair re-derived since the mart's last build (tombstones keep their date);
  - the dates of every source whose identity row changed since then (its history moved between users);
  - the old and the new first_seen_date of every user whose first_seen_date changed (user_facts keeps the
    previous one; if the mart skipped a build, user_facts may have changed twice and the older value is gone:
    recompute all).
  Everything when the `prior` CTE says to recompute all.
-#}
{#-
  The date a daily mart recomputes from when it recomputes everything: 1900-01-01, or the earliest `columns`
  date of `relation` (rows meeting `where`) when that is earlier: data dated before 1900 (a wrong clock, old
  records backfilled) counts like any other.
-#}
{% macro lifecycle_beginning(relation, columns, where='1 = 1') -%}
(
    select min(b.d) from (
        select {{ date_literal('1900-01-01') }} as d
        {%- for c in columns %}
        union all
        select min(x.{{ c }}) from {{ relation }} as x where {{ where }}
        {%- endfor %}
    ) as b
)
{%- endmacro %}

{% macro lifecycle_changed_from(source_days, identity, user_facts, builds) -%}
    select
        case
            -- everything: from the earliest day a fact is dated
            when (select p.recompute_all from prior as p) = 1 or {{ lifecycle_skipped_builds(builds, [identity, user_facts]) }}
                then {{ lifecycle_beginning(source_days, ['event_date', 'created_at_date']) }}
            else min(c.changed_from)
        end as changed_from
    from (
        select {{ add_days('p.prior_as_of_date', 1) }} as changed_from from prior as p
        union all
        select min(s.event_date) from {{ source_days }} as s
        where s._built_at > (select p.prior_built_at from prior as p)
        union all
        select min(s.event_date) from {{ source_days }} as s
        where s.source_key in (
            select m.source_key from {{ identity }} as m
            where m._built_at > (select p.prior_built_at from prior as p)
        )
        union all
        select min(
            case
                when f.previous_first_seen_date is null or f.first_seen_date < f.previous_first_seen_date then f.first_seen_date
                else f.previous_first_seen_date
            end
        )
        from {{ user_facts }} as f
        where f._built_at > (select p.prior_built_at from prior as p)
            and (
                f.first_seen_date is null and f.previous_first_seen_date is not null
                or f.first_seen_date is not null and f.previous_first_seen_date is null
                or f.first_seen_date <> f.previous_first_seen_date
            )
    ) as c
{%- endmacro %}

{#-
  The rows of `relation` an incremental model has to re-read (needs the `prior` CTE): those an upstream
  delete+insert model rewrote since this model's last build, or all of them when `prior` says to recompute all.
  Two branches, not one `or`: rewritten rows are appended together at the end of their table, and a filter on
  _built_at alone lets the warehouse skip every older block (DuckDB, 8.6M status runs: 2.6 ms instead of 21).
  `columns` is a select list over the alias `r`, `where` an optional further condition on it.
-#}
{% macro lifecycle_rebuilt_rows(relation, columns, where=none) -%}
    select {{ columns }}
    from {{ relation }} as r
    where r._built_at > (select p.prior_built_at from prior as p)
        and (select p.recompute_all from prior as p) = 0
        {% if where %}and {{ where }}{% endif %}
    union all
    select {{ columns }}
    from {{ relation }} as r
    where (select p.recompute_all from prior as p) = 1
        {% if where %}and {{ where }}{% endif %}
{%- endmacro %}

{#-
  True when the model being built skipped a build since it last wrote {{ this }} (needs the `prior` CTE): a
  partial build (--select / --exclude) ran the models upstream without it. `builds` is
  ref('int_lifecycle__builds'), which has a row for every build that includes it. A build that left the log out
  too (`--select int_lifecycle__identity`, or dbt's `--full-refresh -s` of one model) adds no row, so the rows it
  stamped in `upstream` (the incremental models whose previous_* columns the caller reads) with a time the log
  lacks give it away.
-#}
{% macro lifecycle_skipped_builds(builds, upstream=[]) -%}
(
    (select count(*) from {{ builds }} as b where b.built_at > (select p.prior_built_at from prior as p)) > 1
    {%- for relation in upstream %}
    or exists (
        select 1 from {{ relation }} as x
        where x._built_at > (select p.prior_built_at from prior as p)
            -- rows this same build wrote are no skipped build, logged or not
            and x._built_at < {{ lifecycle_run_at() }}
            and x._built_at not in (select b.built_at from {{ builds }} as b)
    )
    {%- endfor %}
)
{%- endmacro %}

{#-
  The (source, day) pairs of `source_days` whose facts are new to the model being built (needs the `prior`
  CTE): re-derived since its last build, or dated between the previous D and this one. Two branches, not one
  `or`, so the filter on _built_at skips older blocks (see lifecycle_rebuilt_rows).
-#}
{% macro lifecycle_changed_pairs(source_days) -%}
    select s.source_key, s.event_date
    from {{ source_days }} as s
    where s._built_at > (select p.prior_built_at from prior as p)
    union all
    select s.source_key, s.event_date
    from {{ source_days }} as s
    where s.event_date > (select p.prior_as_of_date from prior as p) and s.event_date <= {{ lifecycle_as_of_date() }}
{%- endmacro %}
