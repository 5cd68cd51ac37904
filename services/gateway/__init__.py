"""The gateway: the platform's only public door (REST + JSON over gRPC to the services).

It authenticates users, holds the org tree and each user's scope, and turns HTTP requests into
calls on the orders, inventory, customers and reporting services; it keeps no domain rules.
"""
