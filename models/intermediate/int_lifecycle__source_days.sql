{{ config(
    materialized=lifecycle_incremental(),
    unique_key=['source_key', 'event_date'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    tags=['lifecycle', 'intermediate']
) }}

-- Read only by incremental runs; dbt (and the runner) take the DAG from a parse with is_incremental() false.
-- depends_on: {{ ref('int_lifecycle__builds') }}

{#
  Daily facts per event *source* (a user id, or an anonymous id when the event has no user id), before
  identity resolution. Identity depends on D and on later identify/alias calls, so facts are kept per source and
  mapped to users downstream; that way a new identify re-attributes history without reading raw events again.

  Incremental: only the (source, day) pairs holding a copy of an id received after the watermark (minus
  lifecycle__lookback_hours) are recomputed, from all of their raw rows and every other copy of those rows'
  ids, so late and duplicate rows are handled exactly as in a full refresh while a heavy user's history is not
  read again for one new event.
-#}

{%- set tz = lifecycle_tz() -%}
{#- Checked on every build (lifecycle_watermark reads it on incremental ones), so a bad value fails early. -#}
{%- set lookback = lifecycle_int_var('lifecycle__lookback_hours', 24, 0) -%}
{%- set plan_trait = lifecycle_string_var('lifecycle__plan_trait', 'plan') -%}
{%- set tables = ['tracks', 'pages', 'screens', 'identifies'] -%}
{%- set raw_models = ['stg_lifecycle__tracks', 'stg_lifecycle__pages', 'stg_lifecycle__screens', 'stg_lifecycle__identifies'] -%}

with

{% if is_incremental() %}

prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds')) }}
),

-- Rows received after this point are new. The lookback re-reads rows a loader committed late; reading a row
-- twice is harmless because its whole pair is recomputed from scratch below. Rows landed later still, with an
-- older received_at, are counted there and make it read everything (see lifecycle_watermark).
watermark as (
{{ lifecycle_watermark(raw_models) }}
),

{% for t in tables %}
-- The rows received after the watermark (a range filter on received_at, which follows the load order).
-- When everything is read, so are the rows without a received_at and those received at or before 1900-01-01
-- (the watermark that stands for "everything"): two more branches, each a constant filter the warehouse checks
-- against each block's statistics, so that they cost nothing on other runs.
{{ t }}_new as (
    {% for branch in ['received', 'unstamped', 'ancient'] -%}
    {% if not loop.first %}union all{% endif %}
    select
        n.id,
        {% if t == 'identifies' -%}
        {{ lifecycle_source_key('n.user_id', 'cast(null as ' ~ text_type() ~ ')') }} as source_key,
        {%- else -%}
        {{ lifecycle_source_key('n.user_id', 'n.anonymous_id') }} as source_key,
        {%- endif %}
        n.event_date
    from {{ ref('stg_lifecycle__' ~ t) }} as n
    {% if branch == 'received' -%}
    where n.received_at > (select w.received_after from watermark as w)
    {%- elif branch == 'unstamped' -%}
    where n.received_at is null and {{ lifecycle_reads_all() }}
    {%- else -%}
    where n.received_at <= {{ timestamp_literal('1900-01-01 00:00:00+00:00') }} and {{ lifecycle_reads_all() }}
    {%- endif %}
    {% endfor %}
),
{% endfor %}

-- The (source, day) pairs to recompute: those of the new rows. Other copies of a new row's id need no search:
-- a copy received earlier than it either is new too (its pair is here) or was received before the lookback
-- window and keeps winning the dedup (its pair does not change); a copy received later is itself new.
affected_pairs as {{ cte_materialized() }} (
    select distinct source_key, event_date
    from (
        {% for t in tables %}
        {% if not loop.first %}union all{% endif %}
        select n.source_key, n.event_date from {{ t }}_new as n
        {% endfor %}
        -- reading everything (recomputing everyone after a var changed, e.g. the time zone that dates every
        -- row, or raw rows were deleted): the stored pairs are replaced too, as tombstones where no row dates
        -- there any more (--full-refresh drops those)
        union all
        select t.source_key, t.event_date from {{ this }} as t
        where {{ lifecycle_reads_all() }}
        -- stored pairs holding a row received after the watermark are re-derived even when no new row lands
        -- in them: a row deleted since (inside the lookback window, or stamped after its build started, which
        -- no count sees) then goes too
        union all
        select t.source_key, t.event_date from {{ this }} as t
        where t.max_received_at > (select w.received_after from watermark as w)
    ) as pairs
    where source_key is not null
),

affected_dates as (
    select distinct event_date from affected_pairs
),

affected_user_ids as (
    select distinct substr(source_key, 3) as id from affected_pairs where source_key like 'u:%'
),

affected_anonymous_ids as (
    select distinct substr(source_key, 3) as id from affected_pairs where source_key like 'a:%'
),

{% for t in tables %}
-- The raw rows of the affected sources on the affected days (a superset of the pairs' rows, found on the raw
-- columns without building keys). Only these rows, and the other copies of their ids below, are parsed.
{{ t }}_in_range as {{ cte_materialized() }} (
    select r.*
    from {{ ref('stg_lifecycle__' ~ t) }} as r
    where r.id is not null
        and r.event_date in (select d.event_date from affected_dates as d)
        -- the same days as a range on the raw timestamp, widened past any time zone offset: a filter the
        -- warehouse can check against each block's min/max (raw tables load in time order), where the local
        -- date has to be computed for every row
        and r.event_at >= (select cast({{ add_days('min(d.event_date)', -2) }} as timestamp) from affected_dates as d)
        and r.event_at < (select cast({{ add_days('max(d.event_date)', 3) }} as timestamp) from affected_dates as d)
        and (
            nullif(r.user_id, '') in (select a.id from affected_user_ids as a)
            {% if t != 'identifies' %}or (nullif(r.user_id, '') is null and r.anonymous_id in (select a.id from affected_anonymous_ids as a)){% endif %}
        )
),

-- Their ids that have another copy anywhere, so that dedup sees the first received. The search reads only the
-- id column of the whole history; the few repeated ids are then fetched whole.
{{ t }}_copied_ids as {{ cte_materialized() }} (
    select c.id
    from {{ ref('stg_lifecycle__' ~ t) }} as c
    where c.id in (select i.id from {{ t }}_in_range as i)
    group by c.id
    having count(*) > 1
),

-- A row both in range and copied comes twice; dedup keeps one of two identical rows, so that is harmless.
{{ t }}_raw as {{ cte_materialized() }} (
    select i.* from {{ t }}_in_range as i
    union all
    select r.*
    from {{ ref('stg_lifecycle__' ~ t) }} as r
    where r.id in (select c.id from {{ t }}_copied_ids as c)
),
{% endfor %}

{% else %}

{% for t in tables %}
{{ t }}_raw as {{ cte_inline() }} (
    select * from {{ ref('stg_lifecycle__' ~ t) }}
),
{% endfor %}

{% endif %}

-- Every raw row with a source and the facts it carries, classified before dedup so that the dedup window only
-- moves narrow rows. Event names match on event_text (SPEC 4.3); churn and non-activity events are never
-- activity; a purchase's revenue is the first numeric of revenue/total/value, rounded to cents (SPEC 4.6).
-- Pages and screens are always activity. Identifies only count as facts of their user_id (SPEC 4.3).
tracks_keys as {{ cte_inline() }} (
    select
        id,
        {{ lifecycle_source_key('user_id', 'anonymous_id') }} as source_key,
        received_at,
        event_at,
        event_date,
        case
            when {{ lifecycle_event_in('event_text', 'lifecycle__churn_events', ['Account Deleted', 'App Uninstalled']) }} then 0
            when {{ lifecycle_event_in('event_text', 'lifecycle__non_activity_events', []) }} then 0
            else 1
        end as is_active,
        case when {{ lifecycle_event_in('event_text', 'lifecycle__churn_events', ['Account Deleted', 'App Uninstalled']) }} then 1 else 0 end as is_churn_signal,
        case when {{ lifecycle_event_in('event_text', 'lifecycle__core_events', []) }} then 1 else 0 end as is_core_event,
        is_purchase,
        case
            when is_purchase = 1
                then coalesce(
                    round({{ safe_decimal('revenue_text') }}, 2),
                    round({{ safe_decimal('total_text') }}, 2),
                    round({{ safe_decimal('value_text') }}, 2),
                    0
                )
        end as revenue
    -- a purchase's three texts, read from the JSON once and cut to what rounds to cents (see cents_text), so
    -- that the parse repeats column reads, not JSON reads
    from (
        select
            j.*,
            {{ cents_text('j.revenue_json') }} as revenue_text,
            {{ cents_text('j.total_json') }} as total_text,
            {{ cents_text('j.value_json') }} as value_text
        from (
            select
                p.*,
                case when p.is_purchase = 1 then {{ json_number_text('p.properties', 'revenue') }} end as revenue_json,
                case when p.is_purchase = 1 then {{ json_number_text('p.properties', 'total') }} end as total_json,
                case when p.is_purchase = 1 then {{ json_number_text('p.properties', 'value') }} end as value_json
            from (
                select
                    r.*,
                    case when {{ lifecycle_event_in('r.event_text', 'lifecycle__purchase_events', ['Order Completed']) }} then 1 else 0 end as is_purchase
                from tracks_raw as r
            ) as p
        ) as j
    ) as tracks_read
),

{% for t in ['pages', 'screens'] %}
{{ t }}_keys as {{ cte_inline() }} (
    select
        id,
        {{ lifecycle_source_key('user_id', 'anonymous_id') }} as source_key,
        received_at,
        event_at,
        event_date
    from {{ t }}_raw
),
{% endfor %}

-- createdAt / created_at give a literal date when the text starts with YYYY-MM-DD; the plan trait feeds
-- subscription_status (SPEC 4.3, 5): a scalar's text, as an object or array prints differently per warehouse.
identifies_keys as {{ cte_inline() }} (
    select
        id,
        {{ lifecycle_source_key('user_id', 'cast(null as ' ~ text_type() ~ ')') }} as source_key,
        -- tie-breaks only: the copy int_lifecycle__identity keeps (see dedup_facts)
        user_id,
        anonymous_id,
        received_at,
        event_at,
        event_date,
        {{ safe_date_prefix(json_text('traits', 'createdAt')) }} as created_at_camel,
        {{ safe_date_prefix(json_text('traits', 'created_at')) }} as created_at_snake,
        {{ json_scalar_text('traits', plan_trait) }} as plan_value
    from identifies_raw
),

{#- Every fact a copy carries is a tie-break, so that copies received at the same instant but differing in what
    counts here (a replay with an edited payload) resolve the same way on every warehouse and in every run: the
    tie-break columns in order, then those compared as text. Identifies break ties first as
    int_lifecycle__identity does (timestamp, user_id, anonymous_id), so both models keep the same copy: else one
    copy could name the user while the other's createdAt made a second user of its user_id. -#}
{%- set dedup_facts = {
    'tracks': [['event_at', 'is_active', 'is_churn_signal', 'is_core_event', 'is_purchase', 'revenue', 'source_key'], ['source_key']],
    'pages': [['event_at', 'source_key'], ['source_key']],
    'screens': [['event_at', 'source_key'], ['source_key']],
    'identifies': [['event_at', 'user_id', 'anonymous_id', 'created_at_camel', 'created_at_snake', 'plan_value'], ['user_id', 'anonymous_id', 'plan_value']]
} -%}
{% for t in tables %}
-- Dedup on id (SPEC 3): keep the copy received first; ties broken on the copies' facts (first the earliest
-- timestamp, then by source) so every warehouse picks the same.
-- A copy without a received_at counts as received first, as the watermark counts it (a stamped copy landing
-- later then leaves the stored pairs as they are).
-- An incremental run keeps the winners that fall in an affected pair (the others' pairs did not change).
{{ t }}_first as (
    select d.*
    from (
        {{ dedup_first(t ~ '_keys', dedup_facts[t][0], dedup_facts[t][1]) }}
    ) as d
    {% if is_incremental() %}
    inner join affected_pairs as p on p.source_key = d.source_key and p.event_date = d.event_date
    {% endif %}
    where d.source_key is not null
),
{% endfor %}

track_rows as (
    select * from tracks_first
),

view_rows as (
    select source_key, event_date, received_at from pages_first
    union all
    select source_key, event_date, received_at from screens_first
),

identify_rows as (
    select * from identifies_first
),

-- The latest plan value of each source and day (by timestamp, received_at, id), kept with its order keys so
-- the user-level pick downstream can compare days and sources.
identify_plans as (
    select source_key, event_date, plan_value, event_at as plan_event_at, received_at as plan_received_at, id as plan_id
    from (
        select
            r.*,
            row_number() over (
                partition by r.source_key, r.event_date
                -- nulls last: a row without a received_at counts as received first, as in dedup (PostgreSQL
                -- would otherwise put it first in a descending order, DuckDB last)
                order by r.event_at desc, r.received_at desc nulls last, {{ binary_text('r.id') }} desc
            ) as plan_rank
        from identify_rows as r
        where r.plan_value is not null
    ) as ranked
    where plan_rank = 1
),

-- What the next incremental run's watermark starts from (see lifecycle_watermark).
watermark_state as (
{{ lifecycle_watermark_state(raw_models) }}
),

-- One row per source and day with any fact: events and identifies in one aggregation.
source_dates as (
    select
        source_key,
        event_date,
        max(has_event) as has_event,
        max(is_active) as is_active,
        max(is_churn_signal) as has_churn_signal,
        max(is_core_event) as has_core_event,
        sum(is_purchase) as purchase_count,
        sum(revenue) as revenue,
        max(has_identify) as has_identify,
        min(created_at_date) as created_at_date,
        max(received_at) as max_received_at
    from (
        select
            source_key, event_date, received_at, 1 as has_event, is_active, is_churn_signal, is_core_event, is_purchase, revenue,
            0 as has_identify, cast(null as date) as created_at_date
        from track_rows
        union all
        select
            source_key, event_date, received_at, 1, 1, 0, 0, 0, cast(null as {{ money_type() }}),
            0, cast(null as date)
        from view_rows
        union all
        select
            source_key, event_date, received_at, 0, 0, 0, 0, 0, cast(null as {{ money_type() }}),
            1,
            case
                when created_at_camel is null then created_at_snake
                when created_at_snake is null then created_at_camel
                when created_at_camel < created_at_snake then created_at_camel
                else created_at_snake
            end
        from identify_rows
    ) as facts
    group by source_key, event_date
)

{#- An incremental run writes one row per affected pair: a pair left without any row (its ids all moved to a
    copy received earlier elsewhere) keeps a row with no fact (has_event = 0, has_identify = 0), so that the
    delete by (source_key, event_date) removes the old one; int_lifecycle__user_days skips such rows. -#}
{%- if is_incremental() -%}
{%- set pair = 'k' -%}
{%- else -%}
{%- set pair = 'd' -%}
{%- endif %}
select
    {{ pair }}.source_key,
    {{ pair }}.event_date,
    coalesce(d.has_event, 0) as has_event,
    coalesce(d.is_active, 0) as is_active,
    coalesce(d.has_churn_signal, 0) as has_churn_signal,
    coalesce(d.has_core_event, 0) as has_core_event,
    -- integer counts and null revenue on days without a purchase: DuckDB scans wide decimals (hugeint) an
    -- order of magnitude slower than ints, and a null costs nothing in every downstream scan
    cast(coalesce(d.purchase_count, 0) as integer) as purchase_count,
    case when d.purchase_count > 0 then cast(coalesce(d.revenue, 0) as {{ money_type() }}) end as revenue,
    coalesce(d.has_identify, 0) as has_identify,
    d.created_at_date,
    cast(p.plan_value as {{ text_type() }}) as plan_value,
    p.plan_event_at,
    p.plan_received_at,
    cast(p.plan_id as {{ text_type() }}) as plan_id,
    d.max_received_at,
    (select w.watermark_cutoff from watermark_state as w) as watermark_cutoff,
    (select w.watermark_rows from watermark_state as w) as watermark_rows,
    (select w.watermark_seen_at from watermark_state as w) as watermark_seen_at,
    (select w.watermark_seen_rows from watermark_state as w) as watermark_seen_rows,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all
{% if is_incremental() %}
from affected_pairs as k
left join source_dates as d on d.source_key = k.source_key and d.event_date = k.event_date
{% else %}
from source_dates as d
{% endif %}
left join identify_plans as p on p.source_key = {{ pair }}.source_key and p.event_date = {{ pair }}.event_date
