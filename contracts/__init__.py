"""Contracts: drafting from a certified plan, the frozen document and its signatures, the lifecycle and
amendments, invoices and payments (manual or Stripe), the open register and its OCDS export."""
