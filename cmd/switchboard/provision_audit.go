package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// auditCommand writes a provisioning command to the audit log before it
// changes anything: which command, on which tenant and resource, and which
// settings it was given, by name (never their values: some are secrets,
// some personal data). The service's operator runs these with the
// database's credentials, so the entry names no person. A command whose
// entry cannot be written does not run.
func auditCommand(ctx context.Context, db *metadata.DB, fs *flag.FlagSet, tenantID *sb.ID, resourceType string, resourceID sb.ID) error {
	var given []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "database-url" {
			given = append(given, f.Name)
		}
	})
	sort.Strings(given)
	e := &sb.AuditEntry{TenantID: tenantID, Action: "cli." + strings.ReplaceAll(fs.Name(), " ", "_"), ResourceType: resourceType,
		Detail: strings.Join(given, ",")}
	if resourceID != (sb.ID{}) {
		e.ResourceID = resourceID.String()
	}
	if err := metadata.NewAuditLog(db).Append(ctx, e); err != nil {
		return fmt.Errorf("%s: writing its audit entry: %w", fs.Name(), err)
	}
	return nil
}
