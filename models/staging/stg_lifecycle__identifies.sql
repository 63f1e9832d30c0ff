{{ config(materialized='view', tags=['lifecycle', 'staging']) }}

-- Identify calls: they map anonymous ids to users (SPEC 4.2) and carry the createdAt / plan traits (4.3, 5).
select
    id,
    user_id,
    anonymous_id,
    {{ timestamp_column() }} as event_at,
    {{ to_local_date(timestamp_column(), lifecycle_tz()) }} as event_date,
    received_at,
    traits
from {{ source('cdp', 'identifies') }}
