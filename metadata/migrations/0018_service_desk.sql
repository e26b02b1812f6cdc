-- The service's own support desk: a tenant whose support engineers may
-- visit the tenants that opened themselves to the service desk. Set only by
-- the service's operator (the CLI); no tenant admin can make their tenant
-- one.
ALTER TABLE tenants ADD COLUMN service_desk boolean NOT NULL DEFAULT false;
