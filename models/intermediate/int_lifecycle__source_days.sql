{{ config(
    materialized='incremental',
    unique_key='source_key',
    incremental_strategy='delete+insert',
    tags=['lifecycle', 'intermediate']
) }}

{#-
  Daily facts per event *source* (a user id, or an anonymous id when the event has no user id), before
  identity resolution. Identity depends on D and on later identify/alias calls, so facts are kept per source and
  mapped to users downstream; that way a new identify re-attributes history without reading raw events again.

  Incremental: only sources with raw rows received after the watermark (minus lifecycle__lookback_hours) are
  recomputed, from all of their raw rows, so late and duplicate rows are handled exactly as in a full refresh.
-#}

{%- set tz = lifecycle_tz() -%}
{%- set lookback = lifecycle_int_var('lifecycle__lookback_hours', 24, 0) -%}
{%- set plan_trait = lifecycle_string_var('lifecycle__plan_trait', 'plan') -%}
{%- set tables = ['tracks', 'pages', 'screens', 'identifies'] -%}

with

-- Every raw row with a source and the facts it carries, classified before dedup so that the dedup window only
-- moves narrow rows. Event names match on event_text (SPEC 4.3); churn and non-activity events are never
-- activity; a purchase's revenue is the first numeric of revenue/total/value, rounded to cents (SPEC 4.6).
-- Pages and screens are always activity. Identifies only count as facts of their user_id (SPEC 4.3).
tracks_keys as {{ cte_inline() }} (
    select
        id,
        user_id as raw_user_id,
        anonymous_id as raw_anonymous_id,
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
        case when {{ lifecycle_event_in('event_text', 'lifecycle__purchase_events', ['Order Completed']) }} then 1 else 0 end as is_purchase,
        case
            when {{ lifecycle_event_in('event_text', 'lifecycle__purchase_events', ['Order Completed']) }}
                then coalesce(
                    round({{ safe_decimal(json_text('properties', 'revenue')) }}, 2),
                    round({{ safe_decimal(json_text('properties', 'total')) }}, 2),
                    round({{ safe_decimal(json_text('properties', 'value')) }}, 2),
                    0
                )
        end as revenue
    from {{ ref('stg_lifecycle__tracks') }}
),

pages_keys as {{ cte_inline() }} (
    select
        id,
        user_id as raw_user_id,
        anonymous_id as raw_anonymous_id,
        {{ lifecycle_source_key('user_id', 'anonymous_id') }} as source_key,
        received_at,
        event_at,
        event_date
    from {{ ref('stg_lifecycle__pages') }}
),

screens_keys as {{ cte_inline() }} (
    select
        id,
        user_id as raw_user_id,
        anonymous_id as raw_anonymous_id,
        {{ lifecycle_source_key('user_id', 'anonymous_id') }} as source_key,
        received_at,
        event_at,
        event_date
    from {{ ref('stg_lifecycle__screens') }}
),

-- createdAt / created_at give a literal date when the text starts with YYYY-MM-DD; the plan trait feeds
-- subscription_status (SPEC 4.3, 5).
identifies_keys as {{ cte_inline() }} (
    select
        id,
        user_id as raw_user_id,
        cast(null as {{ text_type() }}) as raw_anonymous_id,
        {{ lifecycle_source_key('user_id', 'cast(null as ' ~ text_type() ~ ')') }} as source_key,
        received_at,
        event_at,
        event_date,
        {{ safe_date_prefix(json_text('traits', 'createdAt')) }} as created_at_camel,
        {{ safe_date_prefix(json_text('traits', 'created_at')) }} as created_at_snake,
        {{ json_text('traits', plan_trait) }} as plan_value
    from {{ ref('stg_lifecycle__identifies') }}
),

{% if is_incremental() %}

prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds')) }}
),

-- Rows received after this point are new. The lookback re-reads rows a loader committed late; reading a row
-- twice is harmless because its whole source is recomputed from scratch below.
watermark as (
    select
        case
            when (select p.recompute_all from prior as p) = 1 then {{ timestamp_literal('1900-01-01 00:00:00+00:00') }}
            else coalesce({{ sub_hours('max(t.max_received_at)', lookback) }}, {{ timestamp_literal('1900-01-01 00:00:00+00:00') }})
        end as received_after
    from {{ this }} as t
),

{% for t in tables %}
{{ t }}_new as (
    select k.id, k.user_id as raw_user_id, {% if t == 'identifies' %}cast(null as {{ text_type() }}){% else %}k.anonymous_id{% endif %} as raw_anonymous_id
    from {{ ref('stg_lifecycle__' ~ t) }} as k
    where k.received_at > (select w.received_after from watermark as w)
),
{% endfor %}

-- Sources to recompute: those of the new rows. Another copy of a new row's id needs no search: a copy received
-- earlier keeps winning (its source does not change) and a copy received later is itself new.
touched as (
{% for t in tables %}
    {% if not loop.first %}union all{% endif %}
    select n.raw_user_id, n.raw_anonymous_id from {{ t }}_new as n
{% endfor %}
),

affected_user_ids as (
    select distinct raw_user_id as id
    from touched
    where nullif(raw_user_id, '') is not null
),

affected_anonymous_ids as (
    select distinct raw_anonymous_id as id
    from touched
    where nullif(raw_user_id, '') is null and nullif(raw_anonymous_id, '') is not null
),

affected_sources as (
    select 'u:' || id as source_key from affected_user_ids
    union all
    select 'a:' || id from affected_anonymous_ids
),

{% for t in tables %}
-- All copies of every id the affected sources hold, wherever they landed, so dedup sees the first received.
-- Few rows, read three times by the dedup: computed once.
{{ t }}_versions as {{ cte_materialized() }} (
    select k.*
    from {{ t }}_keys as k
    where k.id in (
        select s.id
        from {{ ref('stg_lifecycle__' ~ t) }} as s
        where nullif(s.user_id, '') in (select a.id from affected_user_ids as a)
            {% if t != 'identifies' %}or (nullif(s.user_id, '') is null and s.anonymous_id in (select a.id from affected_anonymous_ids as a)){% endif %}
    )
),
{% endfor %}

{% else %}

{% for t in tables %}
{{ t }}_versions as {{ cte_inline() }} (
    select k.*
    from {{ t }}_keys as k
),
{% endfor %}

{% endif %}

{% for t in tables %}
-- Dedup on id (SPEC 3): keep the copy received first; ties broken on fields so every warehouse picks the same.
{{ t }}_first as (
    select *
    from (
        {{ dedup_first(t ~ '_versions', ['received_at', 'event_at', 'source_key']) }}
    ) as d
    where source_key is not null
        {% if is_incremental() %}and source_key in (select a.source_key from affected_sources as a){% endif %}
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
                order by r.event_at desc, r.received_at desc, r.id desc
            ) as plan_rank
        from identify_rows as r
        where r.plan_value is not null
    ) as ranked
    where plan_rank = 1
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

select
    d.source_key,
    case when substr(d.source_key, 1, 2) = 'u:' then 'user' else 'anonymous' end as source_type,
    substr(d.source_key, 3) as source_id,
    d.event_date,
    d.has_event,
    d.is_active,
    d.has_churn_signal,
    d.has_core_event,
    d.purchase_count,
    cast(coalesce(d.revenue, 0) as {{ money_type() }}) as revenue,
    d.has_identify,
    d.created_at_date,
    cast(p.plan_value as {{ text_type() }}) as plan_value,
    p.plan_event_at,
    p.plan_received_at,
    cast(p.plan_id as {{ text_type() }}) as plan_id,
    d.max_received_at,
    {{ lifecycle_run_at() }} as _built_at
from source_dates as d
left join identify_plans as p on p.source_key = d.source_key and p.event_date = d.event_date
