"""Use cases of the inventory service: plain async functions over a unit of work, one module
per area.

- common: the unit of work, roles and limits, posting stock movements to the ledger and
  announcing them, the helpers every area shares
- catalog: the parts catalog (料号) and its successors (替代料)
- stock: warehouses in the caller's scope and their stock
- documents: receipts (入库), adjustments (盘盈/盘亏), write-offs (报废/返厂), the ledger
- work_order_parts: parts for work orders (工单用料): reserve, issue, release, return
- conservation: the ledger against the balances (守恒)
- serial_trace: serialised items (串号) and their history
- transfers: transfers (调拨) between warehouses
- quotas: franchise quota (额度)
- old_part_returns: old parts owed and returned to the manufacturers (旧件返还)
- slow_moving: slow-moving stock (滞销品)
- stocktakes: stocktakes (盘点)
- procurement: reorder levels, suggestions and purchase orders (采购)
"""
