{{ config(materialized='view', tags=['lifecycle', 'staging']) }}

-- Track calls with the columns the lifecycle models use, each dated in lifecycle__timezone. No dedup here:
-- a view cannot push the incremental received_at filter below a window function, so the intermediate models
-- dedup only the rows they read.
select
    id,
    user_id,
    anonymous_id,
    event_text,
    {{ timestamp_column() }} as event_at,
    {{ to_local_date(timestamp_column(), lifecycle_tz()) }} as event_date,
    received_at,
    properties
from {{ source('cdp', 'tracks') }}
