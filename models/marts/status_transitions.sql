{{ config(materialized='view', tags=['lifecycle', 'marts']) }}

-- One row per status change (SPEC 5): every run but a user's first starts with a transition.
select
    user_id || '|' || {{ date_text('valid_from') }} as transition_id,
    user_id,
    valid_from as transition_date,
    {{ lifecycle_status_name('previous_status_code') }} as from_status,
    {{ lifecycle_status_name('status_code') }} as to_status
from {{ ref('int_lifecycle__status_runs') }}
where status_code is not null
    and previous_status_code is not null
