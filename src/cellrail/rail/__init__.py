"""The rail: network registry, orders with chain of identity, custody ledger, bookings and access control."""
