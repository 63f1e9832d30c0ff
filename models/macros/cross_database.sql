{#-
  Dialect-specific SQL of the package. Models call only these macros (through adapter.dispatch, so a project
  can override any of them with `dispatch:` in its dbt_project.yml) and stay portable themselves.
  Variants: duckdb, postgres, redshift, snowflake, bigquery, and default (ANSI-ish, used when nothing closer
  exists). Every macro returns a SQL fragment as a string.
-#}

{#- A string literal holding `value`: quotes doubled, so a var value can never end the literal early. -#}
{% macro sql_string(value) %}{{ return(adapter.dispatch('sql_string', 'cdp_lifecycle')(value)) }}{% endmacro %}

{% macro default__sql_string(value) -%}
'{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{#- Snowflake and BigQuery read backslash escapes inside '...': double them too. -#}
{% macro snowflake__sql_string(value) -%}
'{{ value | string | replace("\\", "\\\\") | replace("'", "''") }}'
{%- endmacro %}

{#- Redshift reads a backslash inside '...' as an escape whatever its settings (its QUOTE_LITERAL doubles them),
    and falls back to postgres__/default__, whose PostgreSQL reads it literally: double it here. -#}
{% macro redshift__sql_string(value) -%}
'{{ value | string | replace("\\", "\\\\") | replace("'", "''") }}'
{%- endmacro %}

{#- BigQuery has no doubled quote inside '...' (two adjacent literals are a syntax error there): \' instead. -#}
{% macro bigquery__sql_string(value) -%}
'{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}


{#- The calendar date of a timestamptz in the IANA zone `tz` (a SQL string literal). -#}
{% macro to_local_date(ts, tz) %}{{ return(adapter.dispatch('to_local_date', 'cdp_lifecycle')(ts, tz)) }}{% endmacro %}

{#- The cast to a timestamp with time zone costs nothing on one, and reads a timestamp without time zone (a
    table a loader created) in the session's zone, UTC in cdp-lifecycle's sessions: `at time zone` on a
    timestamp without time zone would convert the other way, from the zone to UTC. -#}
{% macro default__to_local_date(ts, tz) -%}
cast(cast(({{ ts }}) as timestamp with time zone) at time zone {{ tz }} as date)
{%- endmacro %}

{#- DuckDB converts through ICU, about 10x slower than the scan itself; for UTC the date is plain epoch
    arithmetic: the microseconds less their floor remainder of a day, an exact multiple of a day in 64-bit
    integers (epoch_ms truncated toward 1970, so an instant less than a millisecond before a midnight before
    1970 fell on the next day; a double division cannot tell 1 microsecond before midnight from midnight). -#}
{% macro duckdb__to_local_date(ts, tz) -%}
{%- if tz == "'UTC'" -%}
cast(cast('1970-01-01' as date) + cast((epoch_us({{ ts }}) - (((epoch_us({{ ts }}) % 86400000000) + 86400000000) % 86400000000)) // 86400000000 as integer) as date)
{%- else -%}
cast(timezone({{ tz }}, cast({{ ts }} as timestamp with time zone)) as date)
{%- endif -%}
{%- endmacro %}

{% macro snowflake__to_local_date(ts, tz) -%}
cast(convert_timezone({{ tz }}, {{ ts }}) as date)
{%- endmacro %}

{% macro redshift__to_local_date(ts, tz) -%}
cast(convert_timezone({{ tz }}, {{ ts }}) as date)
{%- endmacro %}

{% macro bigquery__to_local_date(ts, tz) -%}
date({{ ts }}, {{ tz }})
{%- endmacro %}


{#- A timestamp with time zone from an ISO-8601 literal such as '2024-05-01 10:00:00.000000+00:00'. -#}
{% macro timestamp_literal(iso) %}{{ return(adapter.dispatch('timestamp_literal', 'cdp_lifecycle')(iso)) }}{% endmacro %}

{% macro default__timestamp_literal(iso) -%}
cast({{ sql_string(iso) }} as timestamp with time zone)
{%- endmacro %}

{% macro snowflake__timestamp_literal(iso) -%}
to_timestamp_tz({{ sql_string(iso) }})
{%- endmacro %}

{% macro bigquery__timestamp_literal(iso) -%}
timestamp({{ sql_string(iso) }})
{%- endmacro %}


{#- A date literal from 'YYYY-MM-DD'. -#}
{% macro date_literal(ymd) %}{{ return(adapter.dispatch('date_literal', 'cdp_lifecycle')(ymd)) }}{% endmacro %}

{% macro default__date_literal(ymd) -%}
cast({{ sql_string(ymd) }} as date)
{%- endmacro %}


{#- `d` plus `n` days (n may be negative), as a date. -#}
{% macro add_days(d, n) %}{{ return(adapter.dispatch('add_days', 'cdp_lifecycle')(d, n)) }}{% endmacro %}

{% macro default__add_days(d, n) -%}
cast(dateadd(day, {{ n }}, {{ d }}) as date)
{%- endmacro %}

{% macro duckdb__add_days(d, n) -%}
cast(({{ d }}) + cast({{ n }} as integer) as date)
{%- endmacro %}

{% macro postgres__add_days(d, n) -%}
cast(({{ d }}) + cast({{ n }} as integer) as date)
{%- endmacro %}

{#- dbt-redshift falls back to postgres__ macros; Redshift documents dateadd/datediff for dates, not + and -. -#}
{#- Redshift documents DATEADD's interval as an integer, and some day counts here are bigint expressions. -#}
{% macro redshift__add_days(d, n) -%}
cast(dateadd(day, cast({{ n }} as integer), {{ d }}) as date)
{%- endmacro %}

{% macro bigquery__add_days(d, n) -%}
date_add({{ d }}, interval ({{ n }}) day)
{%- endmacro %}


{#- Whole days from `earlier` to `later` (both dates), as an integer. -#}
{% macro days_between(later, earlier) %}{{ return(adapter.dispatch('days_between', 'cdp_lifecycle')(later, earlier)) }}{% endmacro %}

{% macro default__days_between(later, earlier) -%}
datediff(day, {{ earlier }}, {{ later }})
{%- endmacro %}

{% macro duckdb__days_between(later, earlier) -%}
cast(({{ later }}) - ({{ earlier }}) as integer)
{%- endmacro %}

{% macro postgres__days_between(later, earlier) -%}
(({{ later }}) - ({{ earlier }}))
{%- endmacro %}

{% macro redshift__days_between(later, earlier) -%}
{{ default__days_between(later, earlier) }}
{%- endmacro %}

{% macro bigquery__days_between(later, earlier) -%}
date_diff({{ later }}, {{ earlier }}, day)
{%- endmacro %}


{#- Integer division that truncates on every warehouse (DuckDB's `/` returns a double). -#}
{% macro int_div(a, b) %}{{ return(adapter.dispatch('int_div', 'cdp_lifecycle')(a, b)) }}{% endmacro %}

{% macro default__int_div(a, b) -%}
(({{ a }}) / ({{ b }}))
{%- endmacro %}

{% macro duckdb__int_div(a, b) -%}
(({{ a }}) // ({{ b }}))
{%- endmacro %}

{#- Snowflake rounds a quotient of integers to 6 decimals, so trunc(a / b) could round 5.9999996 up to 6: the
    dividend is made a multiple of the divisor first (mod truncates toward zero like trunc), and the quotient is
    then exact. -#}
{% macro snowflake__int_div(a, b) -%}
cast((({{ a }}) - mod({{ a }}, {{ b }})) / ({{ b }}) as bigint)
{%- endmacro %}

{% macro bigquery__int_div(a, b) -%}
div({{ a }}, {{ b }})
{%- endmacro %}


{#-
  The running sum of `packed` per user over the candidate days of `relation` (user_id, point_date,
  first_seen_date, sweep_base, packed) up to `as_of`, each day's state including every change of that day. A RANGE frame
  does that directly (rows of one day are peers) and is the fastest on DuckDB; Redshift has ROWS frames only,
  so the default sums each day first and runs a ROWS frame over the days, which gives the same states.
-#}
{% macro sweep_running_sum(relation, as_of) %}{{ return(adapter.dispatch('sweep_running_sum', 'cdp_lifecycle')(relation, as_of)) }}{% endmacro %}

{% macro default__sweep_running_sum(relation, as_of) -%}
select
    user_id,
    point_date,
    first_seen_date,
    sweep_base,
    cast(sum(day_packed) over (partition by user_id order by point_date rows between unbounded preceding and current row) as bigint) as state
from (
    select user_id, point_date, max(first_seen_date) as first_seen_date, max(sweep_base) as sweep_base, sum(packed) as day_packed
    from {{ relation }}
    where point_date <= {{ as_of }}
    group by user_id, point_date
) as sweep_days
{%- endmacro %}

{% macro duckdb__sweep_running_sum(relation, as_of) -%}
select
    user_id,
    point_date,
    first_seen_date,
    sweep_base,
    cast(sum(packed) over (partition by user_id order by point_date range between unbounded preceding and current row) as bigint) as state
from {{ relation }}
where point_date <= {{ as_of }}
{%- endmacro %}


{#- The JSONPath of a top-level key, as a SQL string literal: `$."key"`, a double quote in the key escaped. -#}
{% macro json_key_path(key) -%}
{{ sql_string('$."' ~ (key | replace('"', '\\"')) ~ '"') }}
{%- endmacro %}

{#- The JSON Pointer (RFC 6901) of a top-level key, as a SQL string literal: DuckDB reads `*` in a JSONPath as a
    wildcard even when quoted, a pointer reads every key as itself (`~` as ~0, `/` as ~1). -#}
{% macro json_pointer(key) -%}
{{ sql_string('/' ~ (key | replace('~', '~0') | replace('/', '~1'))) }}
{%- endmacro %}

{#- A top-level field of a JSON column as text (null when absent or JSON null). `key` is a plain string. -#}
{% macro json_text(column, key) %}{{ return(adapter.dispatch('json_text', 'cdp_lifecycle')(column, key)) }}{% endmacro %}

{% macro default__json_text(column, key) -%}
json_extract_path_text({{ column }}, {{ sql_string(key) }})
{%- endmacro %}

{% macro duckdb__json_text(column, key) -%}
json_extract_string({{ column }}, {{ json_pointer(key) }})
{%- endmacro %}

{% macro postgres__json_text(column, key) -%}
({{ column }} ->> {{ sql_string(key) }})
{%- endmacro %}

{#- Redshift has no ->>; the third argument returns null for text that is not valid JSON instead of failing. -#}
{% macro redshift__json_text(column, key) -%}
json_extract_path_text({{ column }}, {{ sql_string(key) }}, true)
{%- endmacro %}

{% macro snowflake__json_text(column, key) -%}
cast(get({{ column }}, {{ sql_string(key) }}) as varchar)
{%- endmacro %}

{% macro bigquery__json_text(column, key) -%}
json_value({{ column }}, {{ json_key_path(key) }})
{%- endmacro %}


{#-
  A top-level field of a JSON column as text, a JSON number as the shortest text of the double it is (as
  JavaScript, which sent it, holds it): DuckDB reads JSON numbers as doubles, so PostgreSQL, which keeps a
  number's literal digits, prints a fraction or an exponent through float8 to give the same text
  (10.0049999999999999 is 10.005 on both). Strings are read as they are.
-#}
{% macro json_number_text(column, key) %}{{ return(adapter.dispatch('json_number_text', 'cdp_lifecycle')(column, key)) }}{% endmacro %}

{% macro default__json_number_text(column, key) -%}
{{ json_text(column, key) }}
{%- endmacro %}

{#- An integer literal stays as it is on both (DuckDB keeps 64-bit integers exact). float8 refuses a number
    below the smallest double or beyond the largest, which failed the whole build on one landed row (the
    collector's parse never stores such a literal; a loader of its own may): with a margin, a fraction under
    1e-300 is 0 (DuckDB reads one below the smallest double as 0, and every such value is 0 cents) and one of
    1e300 or more keeps its digits, as DuckDB keeps its text (10^24 or more is no amount anyway). -#}
{% macro postgres__json_number_text(column, key) -%}
{%- set t = '(' ~ column ~ ' ->> ' ~ sql_string(key) ~ ')' -%}
case
  when jsonb_typeof(to_jsonb({{ column }} -> {{ sql_string(key) }})) = 'number'
    and {{ t }} ~ '[.eE]'
    then case
      when abs(cast({{ t }} as numeric)) < 1e-300 then '0'
      when abs(cast({{ t }} as numeric)) >= 1e300 then {{ t }}
      else cast(cast({{ t }} as double precision) as text)
    end
  else {{ t }}
end
{%- endmacro %}

{#- Redshift has neither jsonb_typeof nor ->> (it would otherwise take the postgres__ variant). -#}
{% macro redshift__json_number_text(column, key) -%}
{{ json_text(column, key) }}
{%- endmacro %}


{#-
  A top-level field of a JSON column as text when it is a scalar (string, number or boolean); null when it is
  absent, JSON null, an object or an array. Warehouses print a nested value differently (PostgreSQL's jsonb
  sorts its keys and adds spaces, DuckDB keeps them as loaded), so a text that must be the same everywhere
  skips them, as BigQuery's json_value does. The default variant (adapters without their own) and Redshift's
  cannot tell them apart cheaply and keep their JSON text.
-#}
{% macro json_scalar_text(column, key) %}{{ return(adapter.dispatch('json_scalar_text', 'cdp_lifecycle')(column, key)) }}{% endmacro %}

{% macro default__json_scalar_text(column, key) -%}
{{ json_text(column, key) }}
{%- endmacro %}

{#- Redshift only has a type test on SUPER, which needs the whole column parsed: an object or array stays its
    JSON text there. Explicit, as Redshift would otherwise dispatch to the PostgreSQL variant and its ->>. -#}
{% macro redshift__json_scalar_text(column, key) -%}
{{ json_text(column, key) }}
{%- endmacro %}

{#- json_value returns a scalar as JSON (a string in quotes) and null for the rest; ->> '$' unquotes it. -#}
{% macro duckdb__json_scalar_text(column, key) -%}
(json_value({{ column }}, {{ json_pointer(key) }}) ->> '$')
{%- endmacro %}

{#- to_jsonb is a no-op on jsonb and parses json, so the column may have either type. -#}
{% macro postgres__json_scalar_text(column, key) -%}
case when jsonb_typeof(to_jsonb({{ column }} -> {{ sql_string(key) }})) in ('object', 'array') then null else ({{ column }} ->> {{ sql_string(key) }}) end
{%- endmacro %}

{% macro snowflake__json_scalar_text(column, key) -%}
case when is_object(get({{ column }}, {{ sql_string(key) }})) or is_array(get({{ column }}, {{ sql_string(key) }})) then null else cast(get({{ column }}, {{ sql_string(key) }}) as varchar) end
{%- endmacro %}

{#- json_value already returns scalars only. -#}
{% macro bigquery__json_scalar_text(column, key) -%}
{{ json_text(column, key) }}
{%- endmacro %}


{#- True when the text matches the whole regular expression `pattern` (POSIX ERE subset). -#}
{% macro regex_full_match(expr, pattern) %}{{ return(adapter.dispatch('regex_full_match', 'cdp_lifecycle')(expr, pattern)) }}{% endmacro %}

{% macro default__regex_full_match(expr, pattern) -%}
(({{ expr }}) ~ {{ sql_string('^' ~ pattern ~ '$') }})
{%- endmacro %}

{% macro duckdb__regex_full_match(expr, pattern) -%}
regexp_full_match({{ expr }}, {{ sql_string(pattern) }})
{%- endmacro %}

{% macro snowflake__regex_full_match(expr, pattern) -%}
regexp_like({{ expr }}, {{ sql_string(pattern) }})
{%- endmacro %}

{% macro bigquery__regex_full_match(expr, pattern) -%}
regexp_contains({{ expr }}, {{ sql_string('^' ~ pattern ~ '$') }})
{%- endmacro %}


{#-
  A number from text that never fails on garbage: a plain decimal ('12', '-3.5', ' 19.99 ') or one with an
  exponent ('1e3', '2.5E-1'), else null. Both are cast exactly (each engine parses an exponent into a decimal
  without a double). A magnitude of 10^24 or more is not a revenue but a data error, and would overflow
  decimal(38, 12): it is null too, so the next revenue field is used (plain decimals: at most 24 integer
  digits; exponents: tested through a double first, which only a one- or two-digit exponent over at most 24+24
  mantissa digits is sure to fit on every engine). A three-digit exponent is decided from its sign alone, since
  a double would overflow (PostgreSQL raises an error on '1e400' and '1e-400'): negative, the value rounds to
  0; positive, it is 10^24 or more (null), unless the mantissa is zero.
-#}
{% macro safe_decimal(expr) %}{{ return(adapter.dispatch('safe_decimal', 'cdp_lifecycle')(expr)) }}{% endmacro %}

{#-
  The text with the spaces (U+0020) around it cut off, and no other character: what one-argument trim() does on
  PostgreSQL, Redshift and Snowflake. DuckDB's trim() also strips Unicode spaces (a no-break space, U+3000), so
  ' 7' with a no-break space read as 7 there and as no number on PostgreSQL: one event, two revenues.
-#}
{% macro trim_spaces(expr) %}{{ return(adapter.dispatch('trim_spaces', 'cdp_lifecycle')(expr)) }}{% endmacro %}

{% macro default__trim_spaces(expr) -%}
trim({{ expr }})
{%- endmacro %}

{% macro duckdb__trim_spaces(expr) -%}
trim({{ expr }}, ' ')
{%- endmacro %}

{#- BigQuery's one-argument TRIM strips every whitespace character: '\t12.50' would read as a number. -#}
{% macro bigquery__trim_spaces(expr) -%}
trim({{ expr }}, ' ')
{%- endmacro %}

{% macro default__safe_decimal(expr) -%}
{%- set t = trim_spaces(expr) -%}
{#- Up to 24 integer digits after any leading zeros ('000…012.50' is 12.50): the casts read those exactly. -#}
{%- set mantissa = '[-+]?(0*[0-9]{1,24}([.][0-9]{0,24})?|[.][0-9]{1,24})' -%}
{#- Nested CASE: only CASE guarantees the casts never see text the patterns rejected. -#}
case
  when {{ regex_full_match(t, '[-+]?(0*[0-9]{1,24}([.][0-9]*)?|[.][0-9]+)') }}
    then cast({{ t }} as decimal(38, 12))
  {#- An exponent may be written with leading zeros ('5000e-003' is 5): only its digits after them tell its
      size, so that one under 100 is never taken for one of 100 or more. -#}
  when {{ regex_full_match(t, mantissa ~ '[eE][-+]?0*[0-9]{1,2}') }}
    then case
      when abs(cast({{ t }} as double precision)) < 1e24
        then cast({{ t }} as decimal(38, 12))
    end
  when {{ regex_full_match(t, mantissa ~ '[eE]-0*[1-9][0-9]{2}') }}
    then cast(0 as decimal(38, 12))
  when {{ regex_full_match(t, '[-+]?(0+([.]0{0,24})?|[.]0{1,24})[eE][+]?0*[1-9][0-9]{2}') }}
    then cast(0 as decimal(38, 12))
end
{%- endmacro %}

{#- The same bound as the other warehouses (under 10^24): beyond it a number is not a revenue, and it would
    overflow the NUMERIC of money_type. -#}
{% macro bigquery__safe_decimal(expr) -%}
case
  when abs(safe_cast({{ trim_spaces(expr) }} as bignumeric)) < cast('1000000000000000000000000' as bignumeric)
    then safe_cast({{ trim_spaces(expr) }} as bignumeric)
end
{%- endmacro %}


{#-
  The text of a number with what cannot change its rounding to cents cut off, for round(safe_decimal(…), 2):
  rounding half away from zero at two places depends only on the third decimal, so a plain decimal is cut
  after it. Cast whole, 1.0049999999999999 became 1.005000000000 at decimal(38, 12)'s twelve places, then 1.01
  instead of 1.00. Only a whole plain decimal (safe_decimal's first pattern) is cut: cutting other text could
  leave a number ('99.999 USD').
-#}
{% macro cents_text(expr) %}{{ return(adapter.dispatch('cents_text', 'cdp_lifecycle')(expr)) }}{% endmacro %}

{% macro default__cents_text(expr) -%}
{%- set t = trim_spaces(expr) -%}
case
  when {{ t }} like '%.%' and {{ regex_full_match(t, '[-+]?(0*[0-9]{1,24}([.][0-9]*)?|[.][0-9]+)') }}
    then substr({{ t }}, 1, position('.' in {{ t }}) + 3)
  else {{ expr }}
end
{%- endmacro %}

{#- BigQuery's BIGNUMERIC keeps 38 decimals: its cast rounds nothing a revenue carries. -#}
{% macro bigquery__cents_text(expr) -%}
{{ expr }}
{%- endmacro %}


{#-
  A date from text starting with YYYY-MM-DD (that literal date), else null; never fails on 2023-02-30. Year 0000
  is not a date either: PostgreSQL has no year 0 (it fails the cast) while DuckDB accepts it, so both refuse it.
-#}
{% macro safe_date_prefix(expr) %}{{ return(adapter.dispatch('safe_date_prefix', 'cdp_lifecycle')(expr)) }}{% endmacro %}

{% macro default__safe_date_prefix(expr) -%}
{#- Nested CASE, not AND: only CASE guarantees the casts never see text the pattern rejected. -#}
case
  when {{ regex_full_match('substr(' ~ expr ~ ', 1, 10)', '([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])') }}
    then case
      when extract(month from {{ add_days("cast(substr(" ~ expr ~ ", 1, 7) || '-01' as date)", "cast(substr(" ~ expr ~ ", 9, 2) as integer) - 1") }}) = cast(substr({{ expr }}, 6, 2) as integer)
        then {{ add_days("cast(substr(" ~ expr ~ ", 1, 7) || '-01' as date)", "cast(substr(" ~ expr ~ ", 9, 2) as integer) - 1") }}
    end
end
{%- endmacro %}

{% macro duckdb__safe_date_prefix(expr) -%}
case
  when {{ regex_full_match('substr(' ~ expr ~ ', 1, 10)', '([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}') }}
    then try_cast(substr({{ expr }}, 1, 10) as date)
end
{%- endmacro %}

{% macro snowflake__safe_date_prefix(expr) -%}
case
  when {{ regex_full_match('substr(' ~ expr ~ ', 1, 10)', '([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}') }}
    then try_to_date(substr({{ expr }}, 1, 10), 'YYYY-MM-DD')
end
{%- endmacro %}

{% macro bigquery__safe_date_prefix(expr) -%}
case
  when {{ regex_full_match('substr(' ~ expr ~ ', 1, 10)', '([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}') }}
    then safe.parse_date('%Y-%m-%d', substr({{ expr }}, 1, 10))
end
{%- endmacro %}


{#- `expr in (values...)` for a list var of strings; false for an empty list, never null. -#}
{% macro in_list(expr, values) %}{{ return(adapter.dispatch('in_list', 'cdp_lifecycle')(expr, values)) }}{% endmacro %}

{% macro default__in_list(expr, values) -%}
{%- if values | length == 0 -%}
(1 = 0)
{%- else -%}
coalesce(({{ expr }}) in ({% for v in values %}{% if not loop.first %}, {% endif %}{{ sql_string(v) }}{% endfor %}), false)
{%- endif -%}
{%- endmacro %}


{#- The text type. -#}
{% macro text_type() %}{{ return(adapter.dispatch('text_type', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__text_type() %}varchar{% endmacro %}

{% macro postgres__text_type() %}text{% endmacro %}

{#- Redshift's text is varchar(256): longer ids would not fit. -#}
{% macro redshift__text_type() %}varchar(65535){% endmacro %}

{% macro bigquery__text_type() %}string{% endmacro %}


{#- An exact decimal with 2 places, wide enough for any sum of revenues. -#}
{% macro money_type() %}{{ return(adapter.dispatch('money_type', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__money_type() %}decimal(38, 2){% endmacro %}

{% macro bigquery__money_type() %}numeric{% endmacro %}


{#- A double-precision float (the growth-accounting rates). -#}
{% macro float_type() %}{{ return(adapter.dispatch('float_type', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__float_type() %}double precision{% endmacro %}

{% macro bigquery__float_type() %}float64{% endmacro %}

{% macro snowflake__float_type() %}double{% endmacro %}


{#-
  One row per date from `start_date` to `end_date` of the one-row relation `bounds` (a CTE name), as column
  `date_day`. The default uses a digits cross join so it needs no table function: seven digits cover every date
  from 0001-01-01 to 9999-12-31 (a createdAt of 0001-01-01 is a client's default date), and the two high digits
  are bounded by the span first, so a year-long span multiplies out to 100,000 rows, not 10,000,000.
-#}
{% macro date_spine(bounds) %}{{ return(adapter.dispatch('date_spine', 'cdp_lifecycle')(bounds)) }}{% endmacro %}

{% macro default__date_spine(bounds) -%}
select {{ add_days('b.start_date', 'n.n') }} as date_day
from {{ bounds }} as b
cross join (
  select d0.n + 10 * d1.n + 100 * d2.n + 1000 * d3.n + 10000 * d4.n + h.n as n
  from (
    select 100000 * d5.n + 1000000 * d6.n as n
    from (select 0 as n union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d5
    cross join (select 0 as n union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d6
    cross join {{ bounds }} as hb
    where 100000 * d5.n + 1000000 * d6.n <= {{ days_between('hb.end_date', 'hb.start_date') }}
  ) as h
  cross join (select 0 as n union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d0
  cross join (select 0 as n union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d1
  cross join (select 0 as n union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d2
  cross join (select 0 as n union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d3
  cross join (select 0 as n union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d4
) as n
where n.n <= {{ days_between('b.end_date', 'b.start_date') }}
{%- endmacro %}

{% macro duckdb__date_spine(bounds) -%}
select cast(unnest(generate_series(cast(b.start_date as timestamp), cast(b.end_date as timestamp), interval 1 day)) as date) as date_day
from {{ bounds }} as b
where b.start_date <= b.end_date
{%- endmacro %}

{% macro postgres__date_spine(bounds) -%}
select cast(generate_series(cast(b.start_date as timestamp), cast(b.end_date as timestamp), interval '1 day') as date) as date_day
from {{ bounds }} as b
where b.start_date <= b.end_date
{%- endmacro %}

{#- Redshift runs generate_series on the leader node only, where it cannot be combined with a table. -#}
{% macro redshift__date_spine(bounds) -%}
{{ default__date_spine(bounds) }}
{%- endmacro %}

{% macro bigquery__date_spine(bounds) -%}
select date_day
from {{ bounds }} as b
cross join unnest(generate_date_array(b.start_date, b.end_date)) as date_day
{%- endmacro %}


{#- `ts` minus `hours` hours (a validated whole number). -#}
{% macro sub_hours(ts, hours) %}{{ return(adapter.dispatch('sub_hours', 'cdp_lifecycle')(ts, hours)) }}{% endmacro %}

{% macro default__sub_hours(ts, hours) -%}
dateadd(hour, -{{ hours }}, {{ ts }})
{%- endmacro %}

{% macro duckdb__sub_hours(ts, hours) -%}
(({{ ts }}) - interval '{{ hours }} hours')
{%- endmacro %}

{% macro postgres__sub_hours(ts, hours) -%}
(({{ ts }}) - interval '{{ hours }} hours')
{%- endmacro %}

{% macro bigquery__sub_hours(ts, hours) -%}
timestamp_sub({{ ts }}, interval {{ hours }} hour)
{%- endmacro %}


{#- A set union without duplicates (BigQuery requires the DISTINCT keyword, Snowflake refuses it). -#}
{% macro union_distinct() %}{{ return(adapter.dispatch('union_distinct', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__union_distinct() %}union{% endmacro %}

{% macro bigquery__union_distinct() %}union distinct{% endmacro %}


{#- The raw tables' `timestamp` column, quoted where the word is reserved (Redshift) but not where quoting
    changes the case (Snowflake). -#}
{% macro timestamp_column() %}{{ return(adapter.dispatch('timestamp_column', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__timestamp_column() %}"timestamp"{% endmacro %}

{% macro snowflake__timestamp_column() %}timestamp{% endmacro %}

{% macro bigquery__timestamp_column() %}`timestamp`{% endmacro %}


{#- A date as YYYY-MM-DD text whatever the reading session's output format (PostgreSQL's DateStyle, Snowflake's
    DATE_OUTPUT_FORMAT): the ids built from dates are the same for every reader of a view. -#}
{% macro date_text(d) %}{{ return(adapter.dispatch('date_text', 'cdp_lifecycle')(d)) }}{% endmacro %}

{% macro default__date_text(d) %}cast({{ d }} as {{ text_type() }}){% endmacro %}

{#- to_char drops the era: 1 BC-12-31 (an instant of 0001-01-01 in a zone west of UTC) printed as 0001-12-31,
    the id of another day; DuckDB prints it '0001-12-31 (BC)', as this does. -#}
{% macro postgres__date_text(d) -%}
to_char({{ d }}, 'YYYY-MM-DD') || case when {{ d }} < cast('0001-01-01' as date) then ' (BC)' else '' end
{%- endmacro %}

{% macro snowflake__date_text(d) %}to_char({{ d }}, 'YYYY-MM-DD'){% endmacro %}


{#-
  A text operand of a tie-break (SPEC 4.2's "then id", dedup's source order) compared byte by byte, as DuckDB
  does: a PostgreSQL database created with an ICU or libc locale (en_US.UTF-8 is common) sorts 'a-1' before
  'Z-1', which would pick another identify, plan or copy than DuckDB does. BigQuery compares bytes unless a
  dataset sets a default collation, which the default variant leaves alone.
-#}
{% macro binary_text(expr) %}{{ return(adapter.dispatch('binary_text', 'cdp_lifecycle')(expr)) }}{% endmacro %}

{% macro default__binary_text(expr) %}{{ expr }}{% endmacro %}

{% macro postgres__binary_text(expr) %}({{ expr }}) collate "C"{% endmacro %}

{#- Redshift has no COLLATE clause, only the function; a database created case-insensitive needs it. -#}
{% macro redshift__binary_text(expr) %}collate({{ expr }}, 'case_sensitive'){% endmacro %}

{#- An account or database may set DEFAULT_DDL_COLLATION; 'utf8' is the byte order. -#}
{% macro snowflake__binary_text(expr) %}collate({{ expr }}, 'utf8'){% endmacro %}


{#-
  The first copy of every id of `relation` (a CTE or relation with `id` and `received_at` columns): dedup
  keeping the row received first (SPEC 3), a row without a received_at counting as received before any other
  (as the incremental watermark counts it), then by the tie-break columns `keys` in their order (a list of column
  names, ascending, nulls last on every warehouse), those also in `text_keys` compared byte by byte (see
  binary_text). Rows
  without an id are dropped. Other warehouses rank every row with row_number (an extra column dedup_rank = 1 comes
  along); DuckDB finds the ids that occur more than once with a hash aggregate on their 64-bit hashes, passes
  every other row through and keeps the first copy of the few duplicates with arg_min: far cheaper.
-#}
{% macro dedup_first(relation, keys, text_keys) %}{{ return(adapter.dispatch('dedup_first', 'cdp_lifecycle')(relation, keys, text_keys)) }}{% endmacro %}

{#- `nulls last` spelled out: BigQuery sorts nulls first, the other warehouses last. -#}
{% macro default__dedup_first(relation, keys, text_keys) -%}
select *
from (
    select
        r.*,
        row_number() over (partition by r.id order by r.received_at is not null, r.received_at nulls last{% for k in keys %}, {% if k in text_keys %}{{ binary_text('r.' ~ k) }}{% else %}r.{{ k }}{% endif %} nulls last{% endfor %}) as dedup_rank
    from {{ relation }} as r
    where r.id is not null
) as ranked
where dedup_rank = 1
{%- endmacro %}

{% macro duckdb__dedup_first(relation, keys, text_keys) -%}
{#- Ids are first grouped by their 64-bit hash (much cheaper than by text): a hash seen once is a unique id and
    its row passes; every row of a repeated hash (duplicates, and the rare collision) is deduped exactly by id. -#}
with dedup_repeated_hashes as materialized (
    select hash(d.id) as id_hash from {{ relation }} as d where d.id is not null group by 1 having count(*) > 1
)
select r.*
from {{ relation }} as r
where r.id is not null
    and hash(r.id) not in (select x.id_hash from dedup_repeated_hashes as x)
union all
select unnest(first_copy)
from (
    select arg_min(r, (r.received_at is not null, r.received_at{% for k in keys %}, r.{{ k }}{% endfor %})) as first_copy
    from {{ relation }} as r
    where r.id is not null
        and hash(r.id) in (select x.id_hash from dedup_repeated_hashes as x)
    group by r.id
) as deduped
{%- endmacro %}


{#- Keeps a CTE inlined where it is used (DuckDB otherwise materializes a CTE referenced twice: millions of rows
    written to memory to be read back once). -#}
{% macro cte_inline() %}{{ return(adapter.dispatch('cte_inline', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__cte_inline() %}{% endmacro %}

{% macro duckdb__cte_inline() %}not materialized{% endmacro %}

{% macro postgres__cte_inline() %}not materialized{% endmacro %}

{#- Redshift's WITH has no [NOT] MATERIALIZED. -#}
{% macro redshift__cte_inline() %}{% endmacro %}

{#- Computes a small CTE that is read several times once. -#}
{% macro cte_materialized() %}{{ return(adapter.dispatch('cte_materialized', 'cdp_lifecycle')()) }}{% endmacro %}

{% macro default__cte_materialized() %}{% endmacro %}

{% macro duckdb__cte_materialized() %}materialized{% endmacro %}

{% macro postgres__cte_materialized() %}materialized{% endmacro %}

{% macro redshift__cte_materialized() %}{% endmacro %}

{#-
  The number of rows of `relation` whose `column` is at or before `cutoff`, or null: the incremental
  watermark's count. DuckDB counts a table's rows from its metadata and the rows after the cutoff from the few
  blocks whose min/max reach past it, so the count costs the new rows, not the history; elsewhere a single
  filtered pass is cheapest (two counts would be two full scans without an index).
-#}
{% macro count_received_up_to(relation, column, cutoff) %}{{ return(adapter.dispatch('count_received_up_to', 'cdp_lifecycle')(relation, column, cutoff)) }}{% endmacro %}

{% macro default__count_received_up_to(relation, column, cutoff) -%}
(select count(*) from {{ relation }} as x where x.{{ column }} <= {{ cutoff }} or x.{{ column }} is null)
{%- endmacro %}

{% macro duckdb__count_received_up_to(relation, column, cutoff) -%}
((select count(*) from {{ relation }} as x) - (select count(*) from {{ relation }} as x where x.{{ column }} > {{ cutoff }}))
{%- endmacro %}
