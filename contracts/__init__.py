"""Contracts: drafting from a certified plan, the frozen document and its signatures, the lifecycle and
amendments, invoices and payments (manual or Stripe), the open register and its OCDS export.

The public surface for the rest of the package and the shell: the read model of a contract (`ContractRow`,
`contract_row`, `contract_rows`), the daily move of contracts by date (`advance_contracts`), the billing
arithmetic (`billing_periods`, `period_amounts`), and where frozen documents are stored (`store_for`).
"""

from contracts.budgets import BudgetFigures, budget_figures
from contracts.documents import DocumentStore, store_for
from contracts.lifecycle import advance_contracts
from contracts.pricing import billing_periods, period_amounts
from contracts.views import ContractRow, amount_paid, contract_row, contract_rows, side_of

__all__ = [
    "BudgetFigures",
    "ContractRow",
    "DocumentStore",
    "advance_contracts",
    "amount_paid",
    "billing_periods",
    "budget_figures",
    "contract_row",
    "contract_rows",
    "period_amounts",
    "side_of",
    "store_for",
]
