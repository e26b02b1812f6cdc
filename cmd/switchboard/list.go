package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// The service's operator's read commands: tenant list and get, and each
// tenant's people, API keys, trunks and queues. Each prints an aligned
// table, or with -o json the records as JSON, for scripts.

// output is how a read command prints: "table" or "json".
type output struct {
	fs     *flag.FlagSet
	format *string
}

func outputFlag(fs *flag.FlagSet) *output {
	return &output{fs: fs, format: fs.String("o", "table", "output format: table or json")}
}

// check refuses a format other than table or json, after parsing.
func (o *output) check() error {
	if *o.format != "table" && *o.format != "json" {
		return usagef(o.fs, "-o %q: the output format is table or json", *o.format)
	}
	return nil
}

// print writes v as JSON, or the table's header and rows.
func (o *output) print(w io.Writer, v any, header []string, rows [][]string) error {
	if *o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// when is a time in a table: UTC, to the second.
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// whenOr is when(*t), or none for no time.
func whenOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return when(*t)
}

// orDash stands in for an empty cell, so columns stay readable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readCommand parses a read command's flags, checks them, and opens the
// database. With tenant (the -tenant flag's value), it returns that
// tenant's ID, or ENOTFOUND for a tenant that does not exist, so that a
// mistyped ID is not taken for an empty list.
func readCommand(ctx context.Context, fs *flag.FlagSet, args []string, dbURL *string, out *output, tenant *string) (*metadata.DB, sb.ID, error) {
	if err := parseArgs(fs, args); err != nil {
		return nil, sb.ID{}, err
	}
	if err := out.check(); err != nil {
		return nil, sb.ID{}, err
	}
	var id sb.ID
	if tenant != nil {
		var err error
		if id, err = requireID(fs, "tenant", *tenant); err != nil {
			return nil, id, err
		}
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return nil, id, err
	}
	if tenant != nil {
		if _, err := metadata.NewProvisioning(db).Tenant(ctx, id); err != nil {
			db.Close()
			return nil, id, fmt.Errorf("%s: %w", fs.Name(), explain(err))
		}
	}
	return db, id, nil
}

// tenantFlag registers the -tenant flag the tenant-scoped commands require.
func tenantFlag(fs *flag.FlagSet) *string { return fs.String("tenant", "", "tenant ID (required)") }

func runTenantList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenant list", "Lists the tenants by name, with how many people, trunks, queues and API keys each has.", stderr)
	dbURL := databaseFlag(fs)
	deleted := fs.Bool("deleted", false, "list the deleted tenants too")
	out := outputFlag(fs)
	db, _, err := readCommand(ctx, fs, args, dbURL, out, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ts, err := metadata.NewProvisioning(db).Tenants(ctx, *deleted)
	if err != nil {
		return fmt.Errorf("tenant list: %w", err)
	}
	var rows [][]string
	for _, t := range ts {
		state := "active"
		if t.DeletedAt != nil {
			state = "deleted " + when(*t.DeletedAt)
		}
		rows = append(rows, []string{t.ID.String(), t.Name, strconv.Itoa(t.Users), strconv.Itoa(t.Trunks), strconv.Itoa(t.Queues),
			strconv.Itoa(t.APIKeys), when(t.CreatedAt), state})
	}
	return out.print(stdout, ts, []string{"ID", "NAME", "USERS", "TRUNKS", "QUEUES", "API KEYS", "CREATED", "STATE"}, rows)
}

// tenantDetail is what tenant get shows: the tenant's settings, whether
// it was deleted, and how many of each thing it has.
type tenantDetail struct {
	*sb.Tenant
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
	Users     int        `json:"users"`
	Trunks    int        `json:"trunks"`
	Queues    int        `json:"queues"`
	APIKeys   int        `json:"api_keys"`
}

func runTenantGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenant get", "Shows one tenant, deleted or not: its settings and how many people, trunks, queues and API keys it has.", stderr)
	dbURL := databaseFlag(fs)
	tenant := tenantFlag(fs)
	out := outputFlag(fs)
	db, id, err := readCommand(ctx, fs, args, dbURL, out, tenant)
	if err != nil {
		return err
	}
	defer db.Close()
	rec, err := metadata.NewProvisioning(db).Tenant(ctx, id)
	if err != nil {
		return fmt.Errorf("tenant get: %w", explain(err))
	}
	t, err := metadata.NewTenantService(db).FindTenantByID(ctx, id)
	if err != nil {
		return fmt.Errorf("tenant get: %w", explain(err))
	}
	d := tenantDetail{Tenant: t, DeletedAt: rec.DeletedAt, Users: rec.Users, Trunks: rec.Trunks, Queues: rec.Queues, APIKeys: rec.APIKeys}
	deleted := "-"
	if d.DeletedAt != nil {
		deleted = when(*d.DeletedAt)
	}
	yes := strconv.FormatBool
	rows := [][]string{
		{"id", t.ID.String()}, {"name", t.Name}, {"created", when(t.CreatedAt)}, {"deleted", deleted},
		{"users", strconv.Itoa(d.Users)}, {"trunks", strconv.Itoa(d.Trunks)}, {"queues", strconv.Itoa(d.Queues)}, {"api keys", strconv.Itoa(d.APIKeys)},
		{"recording policy", string(t.RecordingPolicy)},
		{"support access", yes(t.Support.Access)}, {"grant approval", yes(t.Support.Approval)}, {"grant download", yes(t.Support.Download)},
		{"grant max ttl", (time.Duration(t.Support.MaxTTLSeconds) * time.Second).String()},
		{"service desk", yes(t.ServiceDesk)},
		{"dial targets", orDash(strings.Join(t.DialTargets, ","))},
		{"call retention days", strconv.Itoa(t.Privacy.CallRetentionDays)}, {"quality retention days", strconv.Itoa(t.Privacy.QualityRetentionDays)},
		{"trace retention days", strconv.Itoa(t.Trace.RetentionDays)}, {"trace drop bodies", yes(t.Trace.DropBodies)},
		{"trace mask numbers", yes(t.Trace.MaskNumbers)}, {"mask operator numbers", yes(t.Privacy.MaskOperatorNumbers)},
	}
	return out.print(stdout, d, []string{"SETTING", "VALUE"}, rows)
}

// tenantList is one of the lists of a tenant's things: its command's
// name and help, the table's header, how to fetch the records and how to
// put one in a row.
type tenantList[T any] struct {
	name, summary string
	header        []string
	fetch         func(p *metadata.Provisioning, ctx context.Context, tenantID sb.ID) ([]T, error)
	row           func(T) []string
}

func (l tenantList[T]) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(l.name, l.summary, stderr)
	dbURL := databaseFlag(fs)
	tenant := tenantFlag(fs)
	out := outputFlag(fs)
	db, id, err := readCommand(ctx, fs, args, dbURL, out, tenant)
	if err != nil {
		return err
	}
	defer db.Close()
	recs, err := l.fetch(metadata.NewProvisioning(db), ctx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", l.name, err)
	}
	var rows [][]string
	for _, r := range recs {
		rows = append(rows, l.row(r))
	}
	return out.print(stdout, recs, l.header, rows)
}

func runUserList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return tenantList[*sb.User]{name: "user list", summary: "Lists a tenant's people by email.",
		header: []string{"ID", "EMAIL", "NAME", "ROLE", "STATE", "CREATED"},
		fetch:  (*metadata.Provisioning).Users,
		row: func(u *sb.User) []string {
			state := "active"
			if u.Disabled {
				state = "disabled"
			}
			return []string{u.ID.String(), u.Email, orDash(u.Name), string(u.Role), state, when(u.CreatedAt)}
		},
	}.run(ctx, args, stdout, stderr)
}

func runAPIKeyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return tenantList[*sb.APIKey]{name: "apikey list",
		summary: "Lists a tenant's API keys, oldest first: their IDs, the first characters of each secret (never the secrets), labels, expiry and last use.",
		header:  []string{"ID", "PREFIX", "LABEL", "ROLE", "CREATED", "EXPIRES", "LAST USED"},
		fetch:   (*metadata.Provisioning).APIKeys,
		row: func(k *sb.APIKey) []string {
			return []string{k.ID.String(), k.Prefix, orDash(k.Label), string(k.Role), when(k.CreatedAt), whenOr(k.ExpiresAt, "never"), whenOr(k.LastUsedAt, "never")}
		},
	}.run(ctx, args, stdout, stderr)
}

func runTrunkList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return tenantList[*metadata.TrunkRecord]{name: "trunk list",
		summary: "Lists a tenant's trunks by name: their numbers, allowed sources, digest username and outbound target.",
		header:  []string{"ID", "NAME", "NUMBERS", "ALLOW", "USERNAME", "OUTBOUND", "CREATED"},
		fetch:   (*metadata.Provisioning).Trunks,
		row: func(t *metadata.TrunkRecord) []string {
			return []string{t.ID.String(), t.Name, orDash(strings.Join(t.Numbers, ",")), orDash(strings.Join(t.Allow, ",")),
				orDash(t.Username), orDash(t.OutboundTarget), when(t.CreatedAt)}
		},
	}.run(ctx, args, stdout, stderr)
}

// queueRecord is a queue as queue list shows it, its longest wait in
// seconds as the HTTP API gives it.
type queueRecord struct {
	*sb.Queue
	MaxWaitSeconds float64 `json:"max_wait_seconds"`
	overflowName   string
}

func runQueueList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return tenantList[queueRecord]{name: "queue list",
		summary: "Lists a tenant's queues by name: their numbers, members, longest wait and overflow.",
		header:  []string{"ID", "NAME", "NUMBERS", "MEMBERS", "MAX WAIT", "OVERFLOW", "CREATED"},
		fetch:   queueRecords,
		row: func(q queueRecord) []string {
			overflow := q.Overflow.Kind
			switch {
			case q.Overflow.QueueID != nil:
				overflow += ":" + q.overflowName
			case q.Overflow.URI != "":
				overflow += ":" + q.Overflow.URI
			}
			members := "all operators"
			if len(q.Members) > 0 {
				members = strconv.Itoa(len(q.Members))
			}
			return []string{q.ID.String(), q.Name, orDash(strings.Join(q.Numbers, ",")), members, q.MaxWait.String(), overflow, when(q.CreatedAt)}
		},
	}.run(ctx, args, stdout, stderr)
}

// queueRecords are the tenant's queues, each with the name of the queue
// it overflows to.
func queueRecords(p *metadata.Provisioning, ctx context.Context, tenantID sb.ID) ([]queueRecord, error) {
	qs, err := p.Queues(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	names := map[sb.ID]string{}
	for _, q := range qs {
		names[q.ID] = q.Name
	}
	recs := []queueRecord{}
	for _, q := range qs {
		r := queueRecord{Queue: q, MaxWaitSeconds: q.MaxWait.Seconds()}
		if q.Overflow.QueueID != nil {
			r.overflowName = names[*q.Overflow.QueueID]
		}
		recs = append(recs, r)
	}
	return recs, nil
}
