{#-
  int_lifecycle__status_runs stores each status as a small integer code: at 1M users it holds ~9M runs, and
  writing two text columns of seven distinct values cost DuckDB about as much as every other column together
  (and made the windows move wider rows). The marts and the status counts decode them with
  lifecycle_status_name, so no reader outside int_lifecycle__status_runs ever sees a code.
-#}

{#- The one list of statuses (SPEC 4.4): a status's code is its position in it. -#}
{% macro lifecycle__status_map(name, code) -%}
{%- set statuses = ['new', 'active', 'power', 'at_risk', 'dormant', 'churned', 'resurrected'] -%}
{%- if code == none -%}
{%- for s in statuses %}{% if s == name %}{{ loop.index }}{% endif %}{% endfor -%}
{%- else -%}
case {{ code }}{% for s in statuses %} when {{ loop.index }} then '{{ s }}'{% endfor %} end
{%- endif -%}
{%- endmacro %}

{#- The code of a status name, for SQL literals. -#}
{% macro lifecycle_status_code(name) -%}
{{ lifecycle__status_map(name, none) }}
{%- endmacro %}

{#- The status name of a code expression (null stays null). -#}
{% macro lifecycle_status_name(code) -%}
{{ lifecycle__status_map(none, code) }}
{%- endmacro %}

{#- A date as int_lifecycle__status_runs packs it: a day count from the user's sweep_base in 17 bits, so a date
    outside [base, base + 131071] moves to the nearer end instead of overflowing into the next field (and past
    64 bits). Dates up to D never pass the upper end (sweep_base is at most 131000 days before D); dates before
    the base only exist for a user active more than 358 years before D. -#}
{% macro lifecycle_sweep_day(expr, base) -%}
case when {{ expr }} < {{ base }} then {{ base }} when {{ expr }} > {{ add_days(base, 131071) }} then {{ add_days(base, 131071) }} else {{ expr }} end
{%- endmacro %}
