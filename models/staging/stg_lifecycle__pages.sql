{{ config(materialized='view', tags=['lifecycle', 'staging']) }}

-- Pages calls: always activity (SPEC 4.3), so only who and when matter. Dedup happens downstream.
select
    id,
    user_id,
    anonymous_id,
    {{ timestamp_column() }} as event_at,
    {{ to_local_date(timestamp_column(), lifecycle_tz()) }} as event_date,
    received_at
from {{ source('cdp', 'pages') }}
