package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// The service's operator's deletes: a tenant, a trunk, a queue, and API
// key revocation. Each is audited in the same transaction as the change.
// What calls name stays readable: a deleted trunk's name is written onto
// its calls, a queue's name is in the timelines of the calls it took, and
// a tenant is marked deleted rather than removed with its call records.
// A trunk, queue or tenant with calls in progress is refused.

func runTenantDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenant delete", "Deletes a tenant: its sessions, API keys, trunks and queues are deleted and its people disabled,\n"+
		"so nothing of it can log in, call in or be called. Its call records, recordings and audit entries stay until\n"+
		"its retention removes them; tenant list -deleted and tenant get still show it. Refused while it has calls in progress.", stderr)
	dbURL := databaseFlag(fs)
	tenant := tenantFlag(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	id, err := requireID(fs, "tenant", *tenant)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := metadata.NewProvisioning(db).DeleteTenant(ctx, id, commandEntry(fs, &id, "tenant", id)); err != nil {
		return fmt.Errorf("tenant delete: %w", explain(err))
	}
	fmt.Fprintf(stdout, "tenant %s deleted\n", id)
	return nil
}

func runAPIKeyRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("apikey revoke", "Revokes an API key (its ID from apikey list): its next request is refused.", stderr)
	dbURL := databaseFlag(fs)
	key := fs.String("key", "", "the API key's ID (required)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	id, err := requireID(fs, "key", *key)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := metadata.NewProvisioning(db).RevokeAPIKey(ctx, id, commandEntry(fs, nil, "api_key", id)); err != nil {
		return fmt.Errorf("apikey revoke: %w", explain(err))
	}
	fmt.Fprintf(stdout, "API key %s revoked\n", id)
	return nil
}

// tenantThing is a tenant-scoped delete's command line: the tenant, and
// the thing by ID or name.
type tenantThing struct {
	fs            *flag.FlagSet
	dbURL, tenant *string
	thing         *string
	what          string
}

func tenantThingFlags(fs *flag.FlagSet, what string) *tenantThing {
	return &tenantThing{fs: fs, what: what, dbURL: databaseFlag(fs), tenant: tenantFlag(fs),
		thing: fs.String(what, "", "the "+what+"'s ID or name (required)")}
}

// run parses the command line, opens the database, finds the thing the
// flag names among the tenant's (names: their IDs and names) and deletes
// it with del, which takes the command's audit entry. It returns the
// thing's ID and name.
func (c *tenantThing) run(ctx context.Context, args []string,
	names func(context.Context, *metadata.Provisioning, sb.ID) (map[sb.ID]string, error),
	del func(p *metadata.Provisioning, tenantID, id sb.ID, e *sb.AuditEntry) error) (sb.ID, string, error) {
	if err := parseArgs(c.fs, args); err != nil {
		return sb.ID{}, "", err
	}
	tenantID, err := requireID(c.fs, "tenant", *c.tenant)
	if err != nil {
		return sb.ID{}, "", err
	}
	v := strings.TrimSpace(*c.thing)
	if v == "" {
		return sb.ID{}, "", usagef(c.fs, "-%s is required", c.what)
	}
	db, err := openDB(ctx, *c.dbURL)
	if err != nil {
		return sb.ID{}, "", err
	}
	defer db.Close()
	p := metadata.NewProvisioning(db)
	named, err := names(ctx, p, tenantID)
	if err != nil {
		return sb.ID{}, "", fmt.Errorf("%s: %w", c.fs.Name(), err)
	}
	for id, name := range named {
		if id.String() == strings.ToLower(v) || name == v {
			if err := del(p, tenantID, id, commandEntry(c.fs, &tenantID, c.what, id)); err != nil {
				return id, name, fmt.Errorf("%s: %w", c.fs.Name(), explain(err))
			}
			return id, name, nil
		}
	}
	return sb.ID{}, "", fmt.Errorf("%s: the tenant has no %s %q", c.fs.Name(), c.what, v)
}

func runTrunkDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trunk delete", "Deletes a trunk with its numbers, outbound route and browser-caller tokens.\n"+
		"Its calls keep its ID and now also its name. Refused while one of its calls is in progress.", stderr)
	id, name, err := tenantThingFlags(fs, "trunk").run(ctx, args,
		func(ctx context.Context, p *metadata.Provisioning, tenantID sb.ID) (map[sb.ID]string, error) {
			ts, err := p.Trunks(ctx, tenantID)
			named := map[sb.ID]string{}
			for _, t := range ts {
				named[t.ID] = t.Name
			}
			return named, err
		},
		func(p *metadata.Provisioning, tenantID, id sb.ID, e *sb.AuditEntry) error {
			return p.DeleteTrunk(ctx, tenantID, id, e)
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trunk %s (%s) deleted\n", id, name)
	return nil
}

func runQueueDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("queue delete", "Deletes a queue: its numbers lead to no queue any more (their calls go to every operator),\n"+
		"and queues that overflowed to it refuse instead. Calls keep its name in their timelines.\n"+
		"Refused while a call waits in it or was dialled to one of its numbers and has not ended.", stderr)
	var rerouted []string
	id, name, err := tenantThingFlags(fs, "queue").run(ctx, args,
		func(ctx context.Context, p *metadata.Provisioning, tenantID sb.ID) (map[sb.ID]string, error) {
			qs, err := p.Queues(ctx, tenantID)
			named := map[sb.ID]string{}
			for _, q := range qs {
				named[q.ID] = q.Name
			}
			return named, err
		},
		func(p *metadata.Provisioning, tenantID, id sb.ID, e *sb.AuditEntry) (err error) {
			rerouted, err = p.DeleteQueue(ctx, tenantID, id, e)
			return err
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queue %s (%s) deleted\n", id, name)
	for _, r := range rerouted {
		fmt.Fprintf(stdout, "queue %s overflowed to it: it now refuses callers after its wait\n", r)
	}
	return nil
}
