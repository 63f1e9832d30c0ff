{{ config(materialized='view', tags=['lifecycle', 'marts']) }}

-- Users per status per date (SPEC 5): a view on the incrementally maintained int_lifecycle__status_daily.
select
    s.status_day_id,
    s.date,
    s.lifecycle_status,
    s.users
from {{ ref('int_lifecycle__status_daily') }} as s
