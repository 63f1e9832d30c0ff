{{ config(materialized='view', tags=['lifecycle', 'marts']) }}

-- One row per user per unbroken run of one status (SPEC 5); valid_to is inclusive and null for the current run.
-- A view over the incrementally maintained runs, so a daily build rewrites nothing here.
select
    user_id || '|' || {{ date_text('valid_from') }} as status_run_id,
    user_id,
    {{ lifecycle_status_name('status_code') }} as lifecycle_status,
    valid_from,
    valid_to,
    {{ lifecycle_status_name('previous_status_code') }} as previous_status
from {{ ref('int_lifecycle__status_runs') }}
where status_code is not null
