package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// auditCommand writes a provisioning command to the audit log before it
// changes anything (commandEntry says what the entry holds). A command
// whose entry cannot be written does not run.
func auditCommand(ctx context.Context, db *metadata.DB, fs *flag.FlagSet, tenantID *sb.ID, resourceType string, resourceID sb.ID) error {
	if tenantID != nil {
		// A deleted tenant gets nothing new: no person, key or trunk that
		// would let it in again, no setting (support access) that would.
		t, err := metadata.NewProvisioning(db).Tenant(ctx, *tenantID)
		if err == nil && t.DeletedAt != nil {
			return fmt.Errorf("%s: tenant %s was deleted at %s", fs.Name(), t.ID, t.DeletedAt.UTC().Format(time.RFC3339))
		}
	}
	if err := metadata.NewAuditLog(db).Append(ctx, commandEntry(fs, tenantID, resourceType, resourceID)); err != nil {
		return fmt.Errorf("%s: writing its audit entry: %w", fs.Name(), err)
	}
	return nil
}

// commandEntry is the audit entry of a provisioning command: which
// command, on which tenant and resource, which settings it was given, by
// name (never their values: some are secrets, some personal data), and
// who ran it from where. The service's operator runs these with the
// database's credentials, so the entry names no person of a tenant: the
// actor is "cli" with the operating system's user and host, and the
// address of the SSH client when the command came over SSH.
func commandEntry(fs *flag.FlagSet, tenantID *sb.ID, resourceType string, resourceID sb.ID) *sb.AuditEntry {
	var given []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "database-url" {
			given = append(given, f.Name)
		}
	})
	sort.Strings(given)
	e := &sb.AuditEntry{TenantID: tenantID, Action: "cli." + strings.NewReplacer(" ", "_", "-", "_").Replace(fs.Name()), ResourceType: resourceType,
		Detail: strings.Join(given, ","), UserAgent: cliActor(), IP: sshClient()}
	if resourceID != (sb.ID{}) {
		e.ResourceID = resourceID.String()
	}
	return e
}

// cliActor names who ran a command: "cli os-user=NAME host=HOST".
func cliActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return "cli os-user=" + name + " host=" + host
}

// sshClient is the address the command's SSH session came from, if any.
func sshClient() string {
	if f := strings.Fields(os.Getenv("SSH_CONNECTION")); len(f) > 0 {
		return f[0]
	}
	return ""
}
