{{ config(materialized='table', tags=['lifecycle', 'intermediate']) }}

{#-
  The 7- and 28-day activity counts as of D (SPEC 4.3, 5), for users with an activity day in [D-27, D]; a user
  absent here has 0 and 0. These counts move for every recently active user each day, so they live in their own
  small table, rebuilt from one date-filtered scan, instead of forcing a rewrite of those users'
  int_lifecycle__user_state rows (a third of all users on a typical product).
-#}

{%- set as_of = lifecycle_as_of_date() -%}

select
    d.user_id,
    cast(sum(case when d.date_day >= {{ add_days(as_of, -6) }} then 1 else 0 end) as integer) as active_days_7,
    cast(count(*) as integer) as active_days_28
from {{ ref('int_lifecycle__user_days') }} as d
where d.is_active = 1
    and d.date_day >= {{ add_days(as_of, -27) }}
    and d.date_day <= {{ as_of }}
group by d.user_id
