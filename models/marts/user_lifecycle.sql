{{ config(materialized='view', tags=['lifecycle', 'marts']) }}

{#-
  One row per user with first_seen_date <= D: status, facts and RFM as of D (SPEC 4.3, 4.4, 4.6, 5).
  A view over int_lifecycle__user_state, which holds every column that only changes with the user's own
  facts, status or ranks; the columns that move each day (as_of_date, days_inactive, rfm_recency_days, and
  the 7/28-day counts of int_lifecycle__recent_activity) are added here, so a daily build does not rewrite a
  row per recently active user.
-#}

{%- set as_of = lifecycle_as_of_date() -%}

select
    s.user_id,
    {{ as_of }} as as_of_date,
    s.lifecycle_status,
    s.status_since,
    s.previous_status,
    s.first_seen_date,
    s.last_active_date,
    coalesce(s.last_active_date, s.first_seen_date) as last_seen_date,
    {{ days_between(as_of, 'coalesce(s.last_active_date, s.first_seen_date)') }} as days_inactive,
    coalesce(a.active_days_7, 0) as active_days_7,
    coalesce(a.active_days_28, 0) as active_days_28,
    s.last_churn_signal_date,
    s.subscription_status,
    s.core_feature_adopted,
    s.purchase_count,
    s.monetary,
    {{ days_between(as_of, 's.last_purchase_date') }} as rfm_recency_days,
    s.rfm_recency_score,
    s.rfm_frequency_score,
    s.rfm_monetary_score,
    s.rfm_segment
from {{ ref('int_lifecycle__user_state') }} as s
left join {{ ref('int_lifecycle__recent_activity') }} as a on a.user_id = s.user_id
where s.first_seen_date is not null
    and s.first_seen_date <= {{ as_of }}
