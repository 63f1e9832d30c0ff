{{ config(materialized=lifecycle_incremental(), unique_key='built_at', incremental_strategy='delete+insert', on_schema_change='sync_all_columns', tags=['lifecycle', 'intermediate']) }}

-- One row per build: when it ran, the D it computed and the config it used. Incremental models keep the
-- time of the build that last wrote each row (_built_at) and look it up here, so they know the D and the
-- config their stored rows were derived with (a changed config or an earlier D means: recompute everyone).
select
    {{ lifecycle_run_at() }} as built_at,
    {{ lifecycle_as_of_date() }} as as_of_date,
    cast({{ lifecycle_config_fingerprint() }} as {{ text_type() }}) as config_fingerprint
