{{ config(materialized='view', tags=['lifecycle', 'marts']) }}

-- Duolingo-style growth accounting (SPEC 4.5): a view on the incrementally maintained
-- int_lifecycle__growth_accounting_daily.
select
    g.date,
    g.new_users,
    g.current_users,
    g.reactivated_users,
    g.resurrected_users,
    g.at_risk_wau_users,
    g.at_risk_mau_users,
    g.dormant_users,
    g.dau,
    g.wau,
    g.mau,
    g.nurr,
    g.curr,
    g.rurr,
    g.surr,
    g.iwaurr,
    g.reactivation_rate,
    g.resurrection_rate
from {{ ref('int_lifecycle__growth_accounting_daily') }} as g
