{#-
  int_lifecycle__status_runs stores each status as a small integer code: at 1M users it holds ~9M runs, and
  writing two text columns of seven distinct values cost DuckDB about as much as every other column together
  (and made the windows move wider rows). The marts and the status counts decode them with
  lifecycle_status_name, so no reader outside int_lifecycle__status_runs ever sees a code.
-#}

{#- The code of a status name (SPEC 4.4), for SQL literals. -#}
{% macro lifecycle_status_code(name) -%}
{%- set codes = {'new': 1, 'active': 2, 'power': 3, 'at_risk': 4, 'dormant': 5, 'churned': 6, 'resurrected': 7} -%}
{{ codes[name] }}
{%- endmacro %}

{#- The status name of a code expression (null stays null). -#}
{% macro lifecycle_status_name(code) -%}
case {{ code }} when 1 then 'new' when 2 then 'active' when 3 then 'power' when 4 then 'at_risk' when 5 then 'dormant' when 6 then 'churned' when 7 then 'resurrected' end
{%- endmacro %}
