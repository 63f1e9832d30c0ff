{#-
  Validated access to the package vars (SPEC 4.1). Numbers are checked to be whole numbers in range, lists to
  be lists of strings, dates to look like YYYY-MM-DD, and every value reaches SQL as a number or an escaped
  literal: a var can never inject SQL.
-#}

{#- A whole-number var from minimum to 100000, printed as a SQL integer. Every such var counts days, hours or
    a percentage: above 100000 (273 years of days) a value is a typo, and would fail deep in a build instead
    (a date out of range, an integer overflow) with the model blamed instead of the var. -#}
{% macro lifecycle_int_var(name, default, minimum) -%}
{%- set raw = var(name, default) -%}
{#- before the whole-number test (past 2^53 a JavaScript int is not exact, and would fail that one instead); a
    number or text is all that can read as more than 100000 -#}
{%- if (raw is number and raw > 100000) or (raw is string and (raw | trim | int) > 100000) -%}
{{ exceptions.raise_compiler_error("The var " ~ name ~ " must be at most 100000, not '" ~ raw ~ "': fix it in --vars or dbt_project.yml.") }}
{%- endif -%}
{%- set n = raw | int -%}
{#- A number compares as a number, so that 7.0 (a float to Jinja2, an integer to nunjucks) is 7 to both; a
    boolean (a number to Jinja2) and a text compare as text ("7.0" as text is refused by both). -#}
{%- set is_boolean = raw is sameas(true) or raw is sameas(false) -%}
{%- if raw == none
    or (raw is number and not is_boolean and raw != n)
    or ((raw is not number or is_boolean) and (n | string) != (raw | string | trim))
    or n < minimum -%}
{{ exceptions.raise_compiler_error("The var " ~ name ~ " must be a whole number >= " ~ minimum ~ ", not '" ~ raw ~ "': fix it in --vars or dbt_project.yml.") }}
{%- endif -%}
{{ n }}
{%- endmacro %}

{#- Fails unless the var is a list of strings (event names); prints nothing. -#}
{% macro lifecycle_check_list_var(name, default) -%}
{%- set raw = var(name, default) -%}
{%- if raw == none or raw is string or raw is mapping or raw is not iterable -%}
{{ exceptions.raise_compiler_error("The var " ~ name ~ " must be a list of event names such as ['Order Completed'], not '" ~ raw ~ "'.") }}
{%- endif -%}
{%- for item in raw -%}
{%- if item is not string -%}
{{ exceptions.raise_compiler_error("The var " ~ name ~ " must list event names as strings; '" ~ item ~ "' is not a string.") }}
{%- endif -%}
{%- endfor -%}
{%- endmacro %}

{#- `expr` is one of the event names of the list var `name` (false for an empty list, never null). -#}
{% macro lifecycle_event_in(expr, name, default) -%}
{{- lifecycle_check_list_var(name, default) -}}
{{- in_list(expr, var(name, default)) -}}
{%- endmacro %}

{#- A var's text in the fingerprint, escaped so that no value can read as two (["a\",\"b"] as ["a", "b"]) or as
    the next part ("x|risk=1"): a backslash, a double quote and a bar each take a backslash. Values without
    them print as they are, so that a build's stored fingerprint still matches after an upgrade. -#}
{% macro lifecycle_fingerprint_text(value) -%}
{{ value | string | replace("\\", "\\\\") | replace('"', '\\"') | replace("|", "\\|") }}
{%- endmacro %}

{#- The list var `name` as one text, for the fingerprint. -#}
{% macro lifecycle_list_text(name, default) -%}
{{- lifecycle_check_list_var(name, default) -}}
[{% for v in var(name, default) %}{% if not loop.first %}","{% endif %}{{ lifecycle_fingerprint_text(v) }}{% endfor %}]
{%- endmacro %}

{#- A non-empty string var (time zone, trait name), validated. -#}
{% macro lifecycle_string_var(name, default) -%}
{%- set raw = var(name, default) -%}
{%- if raw is not string or (raw | trim | length) == 0 -%}
{{ exceptions.raise_compiler_error("The var " ~ name ~ " must be a non-empty string, not '" ~ raw ~ "'.") }}
{%- endif -%}
{{ raw }}
{%- endmacro %}

{#- The time zone as a SQL string literal. -#}
{% macro lifecycle_tz() -%}
{{ sql_string(lifecycle_string_var('lifecycle__timezone', 'UTC')) }}
{%- endmacro %}

{#- This run's start (dbt's run_started_at, UTC) as a timestamptz literal: the same in every model of a run. -#}
{% macro lifecycle_run_at() -%}
{{ timestamp_literal(run_started_at | string) }}
{%- endmacro %}

{#-
  D, the as-of date, as a SQL date expression: the lifecycle__as_of_date var (YYYY-MM-DD) when set, else the
  date of run_started_at in lifecycle__timezone, so that every model of one run uses the same D.
-#}
{% macro lifecycle_as_of_date() -%}
{%- set raw = var('lifecycle__as_of_date', none) -%}
{%- if raw == none or (raw | string | trim) == '' or (raw | string | lower) == 'none' or (raw | string | lower) == 'today' -%}
{{ to_local_date(lifecycle_run_at(), lifecycle_tz()) }}
{%- else -%}
{%- set ymd = raw | string | trim -%}
{%- if ymd | length != 10 or ymd[4] != '-' or ymd[7] != '-' -%}
{{ exceptions.raise_compiler_error("The var lifecycle__as_of_date must be a date as YYYY-MM-DD, not '" ~ raw ~ "'.") }}
{%- endif -%}
{%- for i in [0, 1, 2, 3, 5, 6, 8, 9] -%}
{%- if ymd[i] not in '0123456789' -%}
{{ exceptions.raise_compiler_error("The var lifecycle__as_of_date must be a date as YYYY-MM-DD, not '" ~ raw ~ "'.") }}
{%- endif -%}
{%- endfor -%}
{{ date_literal(ymd) }}
{%- endif -%}
{%- endmacro %}

{#-
  Everything a stored derivation depends on besides the events, as one text literal. Incremental models store
  it with each build (int_lifecycle__builds); when it differs from the last build's, they recompute everyone,
  so changing a var never leaves stale rows behind. `version` changes when a release changes what the stored
  rows hold (2: int_lifecycle__user_days gained floor_next_active_date; 4: an object or array plan trait is no
  longer a plan value; 5: the raw tables joined the fingerprint; 6: leading zeros no longer make a revenue
  string too long to be a number; 7: copies of an id received at the same instant are ordered by their facts, and a
  history restarted from the start reaches before 1900; 8: copies of an identify tie-break as in
  int_lifecycle__identity, revenue rounds to cents from its exact text, and a status history before 1900 is
  exact; 9: DuckDB dates an instant less than a millisecond before a midnight before 1970 in UTC on its own day,
  and reads a plan trait named `*` as that key; 10: a revenue exponent with leading zeros is read at the value its
  digits spell; 11: DuckDB trims only spaces around a revenue text, as the other warehouses do, so a no-break
  space no longer makes one a number, and PostgreSQL's ids of a day before year 1 carry ' (BC)', as DuckDB's
  do), so an upgrade recomputes them too. The raw tables are part of it: pointed at other tables (lifecycle__raw_schema, lifecycle__<call>_table), the stored
  rows describe events the models no longer read, which the raw-row counts of the watermark cannot always tell.
-#}
{% macro lifecycle_config_fingerprint() -%}
{%- set parts = [
  'tz=' ~ lifecycle_string_var('lifecycle__timezone', 'UTC'),
  'new=' ~ lifecycle_int_var('lifecycle__new_days', 7, 1),
  'risk=' ~ lifecycle_int_var('lifecycle__at_risk_days', 7, 1),
  'dormant=' ~ lifecycle_int_var('lifecycle__dormant_days', 30, 1),
  'churn=' ~ lifecycle_int_var('lifecycle__churn_days', 90, 1),
  'resurrected=' ~ lifecycle_int_var('lifecycle__resurrected_days', 7, 1),
  'power=' ~ lifecycle_int_var('lifecycle__power_days', 20, 0),
  'decline_min=' ~ lifecycle_int_var('lifecycle__decline_min_baseline_days', 6, 0),
  'decline_pct=' ~ lifecycle_int_var('lifecycle__decline_ratio_pct', 50, 0),
  'churn_events=' ~ lifecycle_list_text('lifecycle__churn_events', ['Account Deleted', 'App Uninstalled']),
  'non_activity=' ~ lifecycle_list_text('lifecycle__non_activity_events', []),
  'core=' ~ lifecycle_list_text('lifecycle__core_events', []),
  'purchase=' ~ lifecycle_list_text('lifecycle__purchase_events', ['Order Completed']),
  'plan=' ~ lifecycle_fingerprint_text(lifecycle_string_var('lifecycle__plan_trait', 'plan')),
  'wau=' ~ lifecycle_int_var('lifecycle__wau_days', 7, 1),
  'mau=' ~ lifecycle_int_var('lifecycle__mau_days', 30, 1),
  'raw=' ~ source('cdp', 'tracks') ~ ',' ~ source('cdp', 'pages') ~ ',' ~ source('cdp', 'screens') ~ ',' ~ source('cdp', 'identifies') ~ ',' ~ source('cdp', 'aliases'),
  'version=11'
] -%}
{{ sql_string(parts | join('|')) }}
{%- endmacro %}

{#- The 7/28-day counts only matter to a user who ever has this many activity days within 28 days: below it,
    neither the power rule nor the decline rule (its baseline needs decline_min days) can hold. -#}
{% macro lifecycle_count_floor() -%}
{%- set power_days = lifecycle_int_var('lifecycle__power_days', 20, 0) | int -%}
{%- set decline_min = lifecycle_int_var('lifecycle__decline_min_baseline_days', 6, 0) | int -%}
{%- if decline_min < power_days -%}{{ decline_min }}{%- else -%}{{ power_days }}{%- endif -%}
{%- endmacro %}
