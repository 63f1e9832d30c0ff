{{ config(materialized='view', tags=['lifecycle', 'staging']) }}

-- Alias calls: previous_id (an anonymous id or an older user id) becomes user_id (SPEC 4.2).
select
    id,
    previous_id,
    user_id,
    {{ timestamp_column() }} as event_at,
    {{ to_local_date(timestamp_column(), lifecycle_tz()) }} as event_date,
    received_at
from {{ source('cdp', 'aliases') }}
