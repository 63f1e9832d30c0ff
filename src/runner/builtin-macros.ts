/**
 * dbt's cross-database macros (the `dbt` namespace: `dbt.dateadd`, `dbt.type_string`, …), re-implemented as
 * Jinja macros with per-adapter variants that follow dbt-core, dbt-postgres, dbt-duckdb, dbt-snowflake,
 * dbt-bigquery and dbt-redshift. They are written in the portable Jinja subset (they are also rendered by
 * minijinja in the parity test), and they live in a TypeScript string so the compiled `dist/` carries them.
 */
export const BUILTIN_MACROS_FILE = '<dbt builtin macros>';

export const BUILTIN_MACROS = String.raw`
{#- -------------------------------------------- default naming (dbt's get_custom_name) -#}
{#- What a project's own generate_schema_name / generate_alias_name may delegate to, as in dbt; without such a
    macro the runner names relations the same way itself. -#}
{%- macro default__generate_schema_name(custom_schema_name, node) -%}
{%- if custom_schema_name -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- else -%}{{ target.schema }}{%- endif -%}
{%- endmacro -%}
{%- macro default__generate_alias_name(custom_alias_name, node) -%}
{%- if custom_alias_name -%}{{ custom_alias_name | trim }}{%- else -%}{{ node.name }}{%- endif -%}
{%- endmacro -%}

{#- ---------------------------------------------------------------- dateadd -#}
{%- macro dateadd(datepart, interval, from_date_or_timestamp) -%}
{{ return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) }}
{%- endmacro -%}
{%- macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
dateadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro -%}
{%- macro postgres__dateadd(datepart, interval, from_date_or_timestamp) -%}
{{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
{%- endmacro -%}
{%- macro redshift__dateadd(datepart, interval, from_date_or_timestamp) -%}
dateadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro -%}
{%- macro duckdb__dateadd(datepart, interval, from_date_or_timestamp) -%}
date_add({{ from_date_or_timestamp }}, interval ({{ interval }}) {{ datepart }})
{%- endmacro -%}
{%- macro bigquery__dateadd(datepart, interval, from_date_or_timestamp) -%}
datetime_add(cast({{ from_date_or_timestamp }} as datetime), interval {{ interval }} {{ datepart }})
{%- endmacro -%}

{#- ---------------------------------------------------------------- datediff -#}
{%- macro datediff(first_date, second_date, datepart) -%}
{{ return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) }}
{%- endmacro -%}
{%- macro default__datediff(first_date, second_date, datepart) -%}
datediff({{ datepart }}, {{ first_date }}, {{ second_date }})
{%- endmacro -%}
{%- macro redshift__datediff(first_date, second_date, datepart) -%}
datediff({{ datepart }}, {{ first_date }}, {{ second_date }})
{%- endmacro -%}
{%- macro duckdb__datediff(first_date, second_date, datepart) -%}
{%- if datepart == 'week' -%}
{#- dbt-duckdb's (since 1.8.4) and dbt-postgres' week: Sundays crossed (date_part dow), not DuckDB's whole weeks; // truncates as PostgreSQL's integer / does -#}
((cast({{ second_date }} as date) - cast({{ first_date }} as date)) // 7 + case when date_part('dow', cast({{ first_date }} as timestamp)) <= date_part('dow', cast({{ second_date }} as timestamp)) then case when {{ first_date }} <= {{ second_date }} then 0 else -1 end else case when {{ first_date }} <= {{ second_date }} then 1 else 0 end end)
{%- else -%}
date_diff('{{ datepart }}', cast({{ first_date }} as timestamp), cast({{ second_date }} as timestamp))
{%- endif -%}
{%- endmacro -%}
{%- macro bigquery__datediff(first_date, second_date, datepart) -%}
datetime_diff(cast({{ second_date }} as datetime), cast({{ first_date }} as datetime), {{ datepart }})
{%- endmacro -%}
{%- macro postgres__datediff(first_date, second_date, datepart) -%}
{%- if datepart == 'year' -%}
(date_part('year', ({{ second_date }})::date) - date_part('year', ({{ first_date }})::date))
{%- elif datepart == 'quarter' -%}
((date_part('year', ({{ second_date }})::date) - date_part('year', ({{ first_date }})::date)) * 4 + date_part('quarter', ({{ second_date }})::date) - date_part('quarter', ({{ first_date }})::date))
{%- elif datepart == 'month' -%}
((date_part('year', ({{ second_date }})::date) - date_part('year', ({{ first_date }})::date)) * 12 + date_part('month', ({{ second_date }})::date) - date_part('month', ({{ first_date }})::date))
{%- elif datepart == 'day' -%}
(({{ second_date }})::date - ({{ first_date }})::date)
{%- elif datepart == 'week' -%}
{#- dbt-postgres' count of the Sundays crossed (date_part dow), not ISO weeks, which start on Monday -#}
((({{ second_date }})::date - ({{ first_date }})::date) / 7 + case when date_part('dow', ({{ first_date }})::timestamp) <= date_part('dow', ({{ second_date }})::timestamp) then case when {{ first_date }} <= {{ second_date }} then 0 else -1 end else case when {{ first_date }} <= {{ second_date }} then 1 else 0 end end)
{%- elif datepart == 'hour' -%}
((({{ second_date }})::date - ({{ first_date }})::date) * 24 + date_part('hour', ({{ second_date }})::timestamp) - date_part('hour', ({{ first_date }})::timestamp))
{%- elif datepart == 'minute' -%}
(((({{ second_date }})::date - ({{ first_date }})::date) * 24 + date_part('hour', ({{ second_date }})::timestamp) - date_part('hour', ({{ first_date }})::timestamp)) * 60 + date_part('minute', ({{ second_date }})::timestamp) - date_part('minute', ({{ first_date }})::timestamp))
{%- elif datepart == 'second' -%}
floor(extract(epoch from ({{ second_date }})::timestamp) - extract(epoch from ({{ first_date }})::timestamp))
{%- else -%}
{{ exceptions.raise_compiler_error("Unsupported datepart for macro datediff in postgres: " ~ datepart) }}
{%- endif -%}
{%- endmacro -%}

{#- ---------------------------------------------------------------- date_trunc -#}
{%- macro date_trunc(datepart, date) -%}
{{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}
{%- endmacro -%}
{%- macro default__date_trunc(datepart, date) -%}
date_trunc('{{ datepart }}', {{ date }})
{%- endmacro -%}
{%- macro bigquery__date_trunc(datepart, date) -%}
timestamp_trunc(cast({{ date }} as timestamp), {{ datepart }})
{%- endmacro -%}

{#- ---------------------------------------------------------------- last_day -#}
{%- macro last_day(date, datepart) -%}
{{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}
{%- endmacro -%}
{%- macro default__last_day(date, datepart) -%}
cast({{ dateadd('day', '-1', dateadd(datepart, '1', date_trunc(datepart, date))) }} as date)
{%- endmacro -%}
{%- macro postgres__last_day(date, datepart) -%}
{%- if datepart == 'quarter' -%}
{#- PostgreSQL has no quarter interval ('1 quarter' is invalid): dbt-postgres adds 3 months -#}
cast({{ dateadd('day', '-1', dateadd('month', '3', date_trunc(datepart, date))) }} as date)
{%- else -%}
{{ default__last_day(date, datepart) }}
{%- endif -%}
{%- endmacro -%}
{#- dbt-redshift's own, so that dispatch does not fall back to postgres__last_day: Redshift's dateadd takes quarter -#}
{%- macro redshift__last_day(date, datepart) -%}
{{ default__last_day(date, datepart) }}
{%- endmacro -%}

{#- ---------------------------------------------------------------- types -#}
{%- macro type_string() -%}{{ return(adapter.dispatch('type_string', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_string() -%}varchar{%- endmacro -%}
{%- macro postgres__type_string() -%}text{%- endmacro -%}
{%- macro redshift__type_string() -%}varchar{%- endmacro -%}
{%- macro bigquery__type_string() -%}string{%- endmacro -%}

{%- macro type_timestamp() -%}{{ return(adapter.dispatch('type_timestamp', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_timestamp() -%}timestamp{%- endmacro -%}
{%- macro snowflake__type_timestamp() -%}timestamp_ntz{%- endmacro -%}

{%- macro type_int() -%}{{ return(adapter.dispatch('type_int', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_int() -%}integer{%- endmacro -%}
{%- macro bigquery__type_int() -%}int64{%- endmacro -%}

{%- macro type_bigint() -%}{{ return(adapter.dispatch('type_bigint', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_bigint() -%}bigint{%- endmacro -%}
{%- macro bigquery__type_bigint() -%}int64{%- endmacro -%}

{%- macro type_numeric() -%}{{ return(adapter.dispatch('type_numeric', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_numeric() -%}numeric(28,6){%- endmacro -%}
{%- macro bigquery__type_numeric() -%}numeric{%- endmacro -%}

{%- macro type_float() -%}{{ return(adapter.dispatch('type_float', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_float() -%}float{%- endmacro -%}
{%- macro postgres__type_float() -%}double precision{%- endmacro -%}
{%- macro duckdb__type_float() -%}double{%- endmacro -%}
{%- macro bigquery__type_float() -%}float64{%- endmacro -%}

{%- macro type_boolean() -%}{{ return(adapter.dispatch('type_boolean', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_boolean() -%}boolean{%- endmacro -%}
{%- macro bigquery__type_boolean() -%}bool{%- endmacro -%}

{#- ---------------------------------------------------------------- current_timestamp -#}
{%- macro current_timestamp() -%}{{ return(adapter.dispatch('current_timestamp', 'dbt')()) }}{%- endmacro -%}
{%- macro default__current_timestamp() -%}current_timestamp{%- endmacro -%}
{%- macro postgres__current_timestamp() -%}now(){%- endmacro -%}
{%- macro redshift__current_timestamp() -%}getdate(){%- endmacro -%}
{#- dbt-snowflake's: the session's time zone would otherwise stamp local times -#}
{%- macro snowflake__current_timestamp() -%}convert_timezone('UTC', current_timestamp()){%- endmacro -%}
{%- macro bigquery__current_timestamp() -%}current_timestamp(){%- endmacro -%}

{#- ---------------------------------------------------------------- casts -#}
{%- macro cast(field, type) -%}{{ return(adapter.dispatch('cast', 'dbt')(field, type)) }}{%- endmacro -%}
{%- macro default__cast(field, type) -%}cast({{ field }} as {{ type }}){%- endmacro -%}

{%- macro safe_cast(field, type) -%}{{ return(adapter.dispatch('safe_cast', 'dbt')(field, type)) }}{%- endmacro -%}
{%- macro default__safe_cast(field, type) -%}cast({{ field }} as {{ type }}){%- endmacro -%}
{%- macro duckdb__safe_cast(field, type) -%}try_cast({{ field }} as {{ type }}){%- endmacro -%}
{%- macro snowflake__safe_cast(field, type) -%}try_cast({{ field }} as {{ type }}){%- endmacro -%}
{%- macro bigquery__safe_cast(field, type) -%}safe_cast({{ field }} as {{ type }}){%- endmacro -%}

{%- macro cast_bool_to_text(field) -%}{{ return(adapter.dispatch('cast_bool_to_text', 'dbt')(field)) }}{%- endmacro -%}
{%- macro default__cast_bool_to_text(field) -%}cast({{ field }} as {{ type_string() }}){%- endmacro -%}
{#- dbt-redshift's: Redshift cannot cast a boolean to a string -#}
{%- macro redshift__cast_bool_to_text(field) -%}
case when {{ field }} is true then 'true' when {{ field }} is false then 'false' end::text
{%- endmacro -%}

{#- ---------------------------------------------------------------- strings -#}
{%- macro concat(fields) -%}{{ return(adapter.dispatch('concat', 'dbt')(fields)) }}{%- endmacro -%}
{%- macro default__concat(fields) -%}concat({{ fields | join(', ') }}){%- endmacro -%}
{%- macro postgres__concat(fields) -%}{{ fields | join(' || ') }}{%- endmacro -%}
{%- macro redshift__concat(fields) -%}{{ fields | join(' || ') }}{%- endmacro -%}

{%- macro hash(field) -%}{{ return(adapter.dispatch('hash', 'dbt')(field)) }}{%- endmacro -%}
{%- macro default__hash(field) -%}md5(cast({{ field }} as {{ type_string() }})){%- endmacro -%}
{%- macro bigquery__hash(field) -%}to_hex(md5(cast({{ field }} as {{ type_string() }}))){%- endmacro -%}

{%- macro split_part(string_text, delimiter_text, part_number) -%}
{{ return(adapter.dispatch('split_part', 'dbt')(string_text, delimiter_text, part_number)) }}
{%- endmacro -%}
{%- macro default__split_part(string_text, delimiter_text, part_number) -%}
split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro -%}
{#- dbt-redshift's: a negative part counts from the end, as the number of delimiters gives it (dbt-core's _split_part_negative) -#}
{%- macro redshift__split_part(string_text, delimiter_text, part_number) -%}
{%- if part_number >= 0 -%}
{{ default__split_part(string_text, delimiter_text, part_number) }}
{%- else -%}
split_part({{ string_text }}, {{ delimiter_text }}, length({{ string_text }}) - length(replace({{ string_text }}, {{ delimiter_text }}, '')) + 2 + {{ part_number }})
{%- endif -%}
{%- endmacro -%}
{%- macro bigquery__split_part(string_text, delimiter_text, part_number) -%}
split({{ string_text }}, {{ delimiter_text }})[safe_offset({{ part_number - 1 }})]
{%- endmacro -%}

{%- macro length(expression) -%}{{ return(adapter.dispatch('length', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__length(expression) -%}length({{ expression }}){%- endmacro -%}
{%- macro redshift__length(expression) -%}len({{ expression }}){%- endmacro -%}

{%- macro replace(field, old_chars, new_chars) -%}
{{ return(adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars)) }}
{%- endmacro -%}
{%- macro default__replace(field, old_chars, new_chars) -%}replace({{ field }}, {{ old_chars }}, {{ new_chars }}){%- endmacro -%}

{%- macro position(substring_text, string_text) -%}
{{ return(adapter.dispatch('position', 'dbt')(substring_text, string_text)) }}
{%- endmacro -%}
{%- macro default__position(substring_text, string_text) -%}position({{ substring_text }} in {{ string_text }}){%- endmacro -%}
{%- macro bigquery__position(substring_text, string_text) -%}strpos({{ string_text }}, {{ substring_text }}){%- endmacro -%}

{%- macro right(string_text, length_expression) -%}
{{ return(adapter.dispatch('right', 'dbt')(string_text, length_expression)) }}
{%- endmacro -%}
{%- macro default__right(string_text, length_expression) -%}right({{ string_text }}, {{ length_expression }}){%- endmacro -%}

{%- macro escape_single_quotes(expression) -%}
{{ return(adapter.dispatch('escape_single_quotes', 'dbt')(expression)) }}
{%- endmacro -%}
{%- macro default__escape_single_quotes(expression) -%}{{ expression | replace("'", "''") }}{%- endmacro -%}
{%- macro bigquery__escape_single_quotes(expression) -%}{{ expression | replace("'", "\\'") }}{%- endmacro -%}

{%- macro string_literal(value) -%}{{ return(adapter.dispatch('string_literal', 'dbt')(value)) }}{%- endmacro -%}
{%- macro default__string_literal(value) -%}'{{ escape_single_quotes(value) }}'{%- endmacro -%}

{#- ---------------------------------------------------------------- aggregates -#}
{%- macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
{{ return(adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num)) }}
{%- endmacro -%}
{%- macro default__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if limit_num -%}
array_to_string(array_slice(array_agg({{ measure }}){% if order_by_clause %} within group ({{ order_by_clause }}){% endif %}, 0, {{ limit_num }}), {{ delimiter_text }})
{%- else -%}
listagg({{ measure }}, {{ delimiter_text }}){% if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endif -%}
{%- endmacro -%}
{%- macro postgres__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if limit_num -%}
array_to_string((array_agg({{ measure }}{% if order_by_clause %} {{ order_by_clause }}{% endif %}))[1:{{ limit_num }}], {{ delimiter_text }})
{%- else -%}
string_agg({{ measure }}, {{ delimiter_text }}{% if order_by_clause %} {{ order_by_clause }}{% endif %})
{%- endif -%}
{%- endmacro -%}
{%- macro redshift__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if limit_num -%}
{{ exceptions.raise_compiler_error("dbt.listagg with limit_num is not supported for redshift by this runner: keep the first rows with row_number() in a CTE and aggregate those") }}
{%- endif -%}
listagg({{ measure }}, {{ delimiter_text }}){% if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro -%}
{%- macro duckdb__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if limit_num -%}
array_to_string((array_agg({{ measure }}{% if order_by_clause %} {{ order_by_clause }}{% endif %}))[1:{{ limit_num }}], {{ delimiter_text }})
{%- else -%}
string_agg({{ measure }}, {{ delimiter_text }}{% if order_by_clause %} {{ order_by_clause }}{% endif %})
{%- endif -%}
{%- endmacro -%}
{%- macro bigquery__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
string_agg({{ measure }}, {{ delimiter_text }}{% if order_by_clause %} {{ order_by_clause }}{% endif %}{% if limit_num %} limit {{ limit_num }}{% endif %})
{%- endmacro -%}

{%- macro any_value(expression) -%}{{ return(adapter.dispatch('any_value', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__any_value(expression) -%}any_value({{ expression }}){%- endmacro -%}
{%- macro postgres__any_value(expression) -%}min({{ expression }}){%- endmacro -%}
{%- macro redshift__any_value(expression) -%}max({{ expression }}){%- endmacro -%}

{%- macro bool_or(expression) -%}{{ return(adapter.dispatch('bool_or', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__bool_or(expression) -%}bool_or({{ expression }}){%- endmacro -%}
{%- macro snowflake__bool_or(expression) -%}boolor_agg({{ expression }}){%- endmacro -%}
{%- macro bigquery__bool_or(expression) -%}logical_or({{ expression }}){%- endmacro -%}

{#- ---------------------------------------------------------------- config -#}
{#- dbt's: {% call set_sql_header(config) %}set work_mem = '1GB';{% endcall %} -#}
{%- macro set_sql_header(config) -%}{{ config.set('sql_header', caller()) }}{%- endmacro -%}

{#- ---------------------------------------------------------------- dates -#}
{%- macro date(year, month, day) -%}{{ return(adapter.dispatch('date', 'dbt')(year, month, day)) }}{%- endmacro -%}
{%- macro default__date(year, month, day) -%}
cast('{{ year }}-{% if month < 10 %}0{% endif %}{{ month }}-{% if day < 10 %}0{% endif %}{{ day }}' as date)
{%- endmacro -%}
`;
