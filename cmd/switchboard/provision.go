package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// databaseFlag registers -database-url with its environment default.
func databaseFlag(fs *flag.FlagSet) *string {
	return secretFlag(fs, "database-url", "SWITCHBOARD_DATABASE_URL", "PostgreSQL URL")
}

// openDB opens and migrates the database for a provisioning command.
func openDB(ctx context.Context, url string) (*metadata.DB, error) {
	if url == "" {
		return nil, errors.New("no database: set SWITCHBOARD_DATABASE_URL or -database-url")
	}
	db, err := metadata.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}

// readPassword takes a secret from SWITCHBOARD_PASSWORD or the first line of
// stdin, never from the command line, where other users could see it.
func readPassword(stdin io.Reader, what string) (string, error) {
	if p, ok := os.LookupEnv("SWITCHBOARD_PASSWORD"); ok {
		return p, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", fmt.Errorf("no %s: set SWITCHBOARD_PASSWORD or pass it on stdin", what)
	}
	return line, nil
}

// explain turns an application error into the message a person should see.
func explain(err error) error {
	if code := sb.ErrorCode(err); code != sb.EINTERNAL && code != "" {
		return errors.New(sb.ErrorMessage(err))
	}
	return err
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Applies the embedded database migrations.", stderr)
	dbURL := databaseFlag(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	db.Close()
	fmt.Fprintln(stdout, "database is up to date")
	return nil
}

func runTenantCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenant create", "Creates a tenant and prints its ID.", stderr)
	dbURL := databaseFlag(fs)
	name := fs.String("name", "", "tenant name (required)")
	policy := fs.String("recording-policy", "never", "never, consent (record calls with a consent record) or trunk (also when the trunk asserts consent)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usagef(fs, "-name is required")
	}
	p, err := sb.ParseRecordingPolicy(*policy)
	if err != nil {
		return fmt.Errorf("tenant create: -recording-policy: %w", explain(err))
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	t := &sb.Tenant{ID: sb.NewID(), Name: strings.TrimSpace(*name), RecordingPolicy: p}
	if err := auditCommand(ctx, db, fs, &t.ID, "tenant", t.ID); err != nil {
		return err
	}
	if err := metadata.NewTenantService(db).CreateTenant(ctx, t); err != nil {
		return fmt.Errorf("tenant create: %w", explain(err))
	}
	fmt.Fprintln(stdout, t.ID)
	return nil
}

func runUserCreate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("user create", "Creates a user. The password comes from SWITCHBOARD_PASSWORD or stdin.", stderr)
	dbURL := databaseFlag(fs)
	tenant := fs.String("tenant", "", "tenant ID (required)")
	email := fs.String("email", "", "login email (required)")
	name := fs.String("name", "", "display name")
	role := fs.String("role", "operator", "operator, supervisor, support or admin")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	tenantID, err := requireID(fs, "tenant", *tenant)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*email) == "" {
		return usagef(fs, "-email is required")
	}
	r, err := sb.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("user create: %w", explain(err))
	}
	password, err := readPassword(stdin, "password")
	if err != nil {
		return fmt.Errorf("user create: %w", err)
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	u := &sb.User{ID: sb.NewID(), TenantID: tenantID, Email: *email, Name: *name, Role: r}
	if err := auditCommand(ctx, db, fs, &tenantID, "user", u.ID); err != nil {
		return err
	}
	if err := metadata.NewUserService(db).CreateUser(ctx, u, password); err != nil {
		return fmt.Errorf("user create: %w", explain(err))
	}
	fmt.Fprintln(stdout, u.ID)
	return nil
}

func runTrunkCreate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("trunk create", "Creates a SIP trunk recognised by source address and/or digest credentials.\n"+
		"With -username, the digest password comes from SWITCHBOARD_PASSWORD or stdin.", stderr)
	dbURL := databaseFlag(fs)
	tenant := fs.String("tenant", "", "tenant ID (required)")
	name := fs.String("name", "", "trunk name (required)")
	username := fs.String("username", "", "SIP digest username")
	consent := fs.Bool("recording-consent", false, "the trunk obtains recording consent for every call it sends")
	keyring := secretFlag(fs, "keyring", "SWITCHBOARD_KEYRING", "the keyring that seals the digest HA1 at rest; serve needs the same")
	var allow, numbers listFlag
	fs.Var(&allow, "allow", "source address or CIDR allowed to send calls (repeatable)")
	fs.Var(&numbers, "number", "number this trunk may call (repeatable, required)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	tenantID, err := requireID(fs, "tenant", *tenant)
	if err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(*name) == "":
		return usagef(fs, "-name is required")
	case len(numbers) == 0:
		return usagef(fs, "-number is required (at least one)")
	}
	t := &sb.Trunk{TenantID: tenantID, Name: *name, Username: *username, Numbers: numbers, RecordingConsent: *consent}
	for _, a := range allow {
		p, err := parsePrefix(a)
		if err != nil {
			return fmt.Errorf("trunk create: -allow %q is not an address or CIDR", a)
		}
		t.Allow = append(t.Allow, p)
	}
	var password string
	if *username != "" {
		if password, err = readPassword(stdin, "digest password"); err != nil {
			return fmt.Errorf("trunk create: %w", err)
		}
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := auditCommand(ctx, db, fs, &t.TenantID, "trunk", sb.ID{}); err != nil {
		return err
	}
	trunks := metadata.NewTrunkService(db)
	if *keyring != "" {
		ring, err := recordings.ParseKeyring(*keyring)
		if err != nil {
			return fmt.Errorf("trunk create: -keyring: %w", err)
		}
		trunks = trunks.WithSealer(ring)
	}
	if err := trunks.CreateTrunk(ctx, t, password); err != nil {
		return fmt.Errorf("trunk create: %w", explain(err))
	}
	fmt.Fprintln(stdout, t.ID)
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func runAPIKeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("apikey create", "Creates an API key and prints it. It is shown only this once.", stderr)
	dbURL := databaseFlag(fs)
	tenant := fs.String("tenant", "", "tenant ID (required)")
	role := fs.String("role", "supervisor", "operator, supervisor, support or admin")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	tenantID, err := requireID(fs, "tenant", *tenant)
	if err != nil {
		return err
	}
	r, err := sb.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("apikey create: %w", explain(err))
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := auditCommand(ctx, db, fs, &tenantID, "api_key", sb.ID{}); err != nil {
		return err
	}
	_, secret, err := metadata.NewAPIKeyService(db).CreateAPIKey(ctx, tenantID, r)
	if err != nil {
		return fmt.Errorf("apikey create: %w", explain(err))
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

// runTenantSet is `switchboard tenant set`: the tenant's recording
// settings.
func runTenantSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenant set", "Changes a tenant's recording, support access, service desk, retention and minimisation settings.", stderr)
	dbURL := databaseFlag(fs)
	tenant := fs.String("tenant", "", "tenant ID (required)")
	policy := fs.String("recording-policy", "", "never, consent or trunk")
	days := fs.Int("recording-retention-days", 0, "days recordings are kept before they are destroyed (1-3650)")
	key := fs.String("recording-consent-key", "-", `the key callers press to consent after the announcement (0-9, * or #; "" turns it off)`)
	support := map[string]*optBool{
		"support-access": optBoolFlag(fs, "support-access", "the service's support engineers may see the tenant's calls and ask for grants (-support-access=false: no more)"),
		"grant-approval": optBoolFlag(fs, "grant-approval", "a supervisor or admin of the tenant approves every grant (=false: not needed)"),
		"grant-download": optBoolFlag(fs, "grant-download", "a grant may allow downloading the decrypted recording (=false: never)"),
	}
	maxTTL := fs.Duration("grant-max-ttl", 0, "the longest a grant may last (1m to 168h)")
	dialTargets := fs.String("dial-targets", "-", `where transfers and forwards to SIP URIs may go: comma-separated domain names ("*.example.com" for subdomains), addresses and CIDR blocks ("" for nowhere)`)
	desk := optBoolFlag(fs, "service-desk", "the tenant is the service's own support desk, whose support engineers (only) may visit tenants with support-access (=false: no longer)")
	privacy := privacyFlags(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	tenantID, err := requireID(fs, "tenant", *tenant)
	if err != nil {
		return err
	}
	settings := 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "database-url" && f.Name != "tenant" {
			settings++
		}
	})
	if settings == 0 {
		return usagef(fs, "nothing to change: give at least one setting")
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := auditCommand(ctx, db, fs, &tenantID, "tenant", tenantID); err != nil {
		return err
	}
	records := metadata.NewRecordingStore(db)
	changed := 0
	if *policy != "" {
		p, err := sb.ParseRecordingPolicy(*policy)
		if err != nil {
			return fmt.Errorf("tenant set: %w", explain(err))
		}
		if err := metadata.NewTenantService(db).SetRecordingPolicy(ctx, tenantID, p); err != nil {
			return fmt.Errorf("tenant set: %w", explain(err))
		}
		changed++
	}
	if *days != 0 {
		if err := records.SetRecordingRetention(ctx, tenantID, *days); err != nil {
			return fmt.Errorf("tenant set: %w", explain(err))
		}
		changed++
	}
	if *key != "-" {
		if err := records.SetConsentDigit(ctx, tenantID, *key); err != nil {
			return fmt.Errorf("tenant set: %w", explain(err))
		}
		changed++
	}
	if *dialTargets != "-" {
		if err := metadata.NewTenantService(db).SetDialTargets(ctx, tenantID, strings.Split(*dialTargets, ",")); err != nil {
			return fmt.Errorf("tenant set: %w", explain(err))
		}
		changed++
	}
	if desk.set {
		if err := metadata.NewTenantService(db).SetServiceDesk(ctx, tenantID, desk.v); err != nil {
			return fmt.Errorf("tenant set: %w", explain(err))
		}
		changed++
	}
	n, err := setSupportPolicy(ctx, db, tenantID, support, *maxTTL)
	if err != nil {
		return fmt.Errorf("tenant set: %w", explain(err))
	}
	changed += n
	if n, err = privacy.apply(ctx, db, tenantID); err != nil {
		return fmt.Errorf("tenant set: %w", explain(err))
	}
	changed += n
	if changed == 0 {
		return errors.New("tenant set: nothing changed: the settings given leave everything as it was")
	}
	fmt.Fprintf(stdout, "tenant %s: %d settings changed\n", tenantID, changed)
	return nil
}

// tenantPrivacy is the flags of a tenant's retention periods and
// minimisation settings; zero or empty leaves a setting as it is.
type tenantPrivacy struct {
	callDays, traceDays, qualityDays *int
	switches                         map[string]*optBool
}

func privacyFlags(fs *flag.FlagSet) *tenantPrivacy {
	return &tenantPrivacy{
		callDays:    fs.Int("call-retention-days", 0, "days a call record keeps who called; then it is anonymised (1-3650)"),
		traceDays:   fs.Int("trace-retention-days", 0, "days SIP traces are kept (1-3650)"),
		qualityDays: fs.Int("quality-retention-days", 0, "days quality samples are kept (1-3650)"),
		switches: map[string]*optBool{
			"trace-drop-bodies":     optBoolFlag(fs, "trace-drop-bodies", "traces keep no SDP bodies (=false: they keep them)"),
			"trace-mask-numbers":    optBoolFlag(fs, "trace-mask-numbers", "traces keep only the last four digits of numbers (=false: whole numbers)"),
			"mask-operator-numbers": optBoolFlag(fs, "mask-operator-numbers", "operators see only the last four digits of callers' numbers (=false: whole numbers)"),
		},
	}
}

// apply writes the settings given and returns how many.
func (p *tenantPrivacy) apply(ctx context.Context, db *metadata.DB, tenantID sb.ID) (int, error) {
	tenants := metadata.NewTenantService(db)
	t, err := tenants.FindTenantByID(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	trace, priv, n := t.Trace, t.Privacy, 0
	for _, d := range []struct{ flag, dst *int }{{p.callDays, &priv.CallRetentionDays}, {p.traceDays, &trace.RetentionDays}, {p.qualityDays, &priv.QualityRetentionDays}} {
		if *d.flag != 0 {
			*d.dst = *d.flag
			n++
		}
	}
	for name, dst := range map[string]*bool{"trace-drop-bodies": &trace.DropBodies, "trace-mask-numbers": &trace.MaskNumbers, "mask-operator-numbers": &priv.MaskOperatorNumbers} {
		if p.switches[name].apply(dst) {
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	if err := tenants.SetTracePolicy(ctx, tenantID, trace); err != nil {
		return 0, err
	}
	return n, tenants.SetPrivacyPolicy(ctx, tenantID, priv)
}

// setSupportPolicy applies the support flags that were given and returns
// how many.
func setSupportPolicy(ctx context.Context, db *metadata.DB, tenantID sb.ID, flags map[string]*optBool, maxTTL time.Duration) (int, error) {
	tenants := metadata.NewTenantService(db)
	t, err := tenants.FindTenantByID(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	p, n := t.Support, 0
	for name, dst := range map[string]*bool{"support-access": &p.Access, "grant-approval": &p.Approval, "grant-download": &p.Download} {
		if flags[name].apply(dst) {
			n++
		}
	}
	if maxTTL != 0 {
		p.MaxTTLSeconds = int(maxTTL / time.Second)
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return n, tenants.SetSupportPolicy(ctx, tenantID, p)
}

// runTrunkOutbound is `switchboard trunk outbound`: the trunk takes the
// calls operators place.
func runTrunkOutbound(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("trunk outbound", "Makes a trunk take the calls operators place.\n"+
		"With -username, the digest password comes from SWITCHBOARD_PASSWORD or stdin, and is sealed with the keyring.", stderr)
	dbURL := databaseFlag(fs)
	keyring := secretFlag(fs, "keyring", "SWITCHBOARD_KEYRING", "the keyring that seals the password")
	trunk := fs.String("trunk", "", "trunk ID (required)")
	target := fs.String("target", "", "where INVITEs go: host:port of the carrier or PBX (required)")
	transport := fs.String("transport", "udp", "udp or tcp")
	mediaFlag := fs.String("media", sb.MediaRTP, "how calls carry audio: rtp, or dtls (DTLS-SRTP over ICE, UDP/TLS/RTP/SAVPF)")
	username := fs.String("username", "", "digest username, when the carrier challenges")
	callerID := fs.String("caller-id", "", "the number presented to the called party")
	priority := fs.Int("priority", 100, "lower is tried first; the next trunk is tried when one fails")
	register := fs.Bool("register", false, "keep the trunk registered with the target (REGISTER, refreshed before it expires)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	trunkID, err := requireID(fs, "trunk", *trunk)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*target) == "" {
		return usagef(fs, "-target is required")
	}
	if *mediaFlag != sb.MediaRTP && *mediaFlag != sb.MediaDTLS {
		return usagef(fs, "-media is rtp or dtls, not %q", *mediaFlag)
	}
	r := sb.OutboundRoute{TrunkID: trunkID, Target: *target, Transport: *transport, Media: *mediaFlag, Username: *username, Register: *register}
	if *callerID != "" {
		if r.CallerID, err = sb.NormalizeNumber(*callerID); err != nil {
			return fmt.Errorf("trunk outbound: -caller-id: %w", explain(err))
		}
	}
	if *username != "" {
		if r.Password, err = readPassword(stdin, "password"); err != nil {
			return fmt.Errorf("trunk outbound: %w", err)
		}
	}
	var sealer metadata.Sealer
	if *keyring != "" {
		ring, err := recordings.ParseKeyring(*keyring)
		if err != nil {
			return fmt.Errorf("trunk outbound: -keyring: %w", err)
		}
		sealer = ring
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := auditCommand(ctx, db, fs, nil, "trunk", trunkID); err != nil {
		return err
	}
	if err := metadata.NewRouteStore(db, sealer).SetOutbound(ctx, r, *priority); err != nil {
		return fmt.Errorf("trunk outbound: %w", explain(err))
	}
	fmt.Fprintf(stdout, "trunk %s takes outbound calls via %s\n", trunkID, r.Target)
	return nil
}

func runQueueCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("queue create", "Creates a queue (department): the numbers given lead to it, its members take its calls,\n"+
		"callers wait up to -max-wait for one of them, then overflow.", stderr)
	dbURL := databaseFlag(fs)
	tenant := fs.String("tenant", "", "tenant ID (required)")
	name := fs.String("name", "", "queue name (required)")
	maxWait := fs.Duration("max-wait", time.Minute, "how long a caller waits for a free member (0: not at all)")
	overflow := fs.String("overflow", sb.OverflowReject, "where callers go after the wait: reject, queue:<name>, or uri:sip:user@host[:port][;transport=tcp]")
	var members, numbers listFlag
	fs.Var(&members, "member", "email of a person who takes the queue's calls (repeatable; none: every operator of the tenant)")
	fs.Var(&numbers, "number", "one of the tenant's numbers that leads to the queue (repeatable)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	tenantID, err := requireID(fs, "tenant", *tenant)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usagef(fs, "-name is required")
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := auditCommand(ctx, db, fs, &tenantID, "queue", sb.ID{}); err != nil {
		return err
	}
	qs := metadata.NewQueueStore(db)
	q := &sb.Queue{TenantID: tenantID, Name: *name, MaxWait: *maxWait, Numbers: numbers}
	switch kind, target, _ := strings.Cut(*overflow, ":"); kind {
	case sb.OverflowQueue:
		next, err := qs.QueueByName(ctx, tenantID, target)
		if err != nil {
			return fmt.Errorf("queue create: -overflow: %w", explain(err))
		}
		q.Overflow = sb.Overflow{Kind: kind, QueueID: &next.ID}
	case sb.OverflowURI:
		q.Overflow = sb.Overflow{Kind: kind, URI: target}
	default:
		q.Overflow = sb.Overflow{Kind: *overflow}
	}
	for _, email := range members {
		id, err := qs.MemberByEmail(ctx, tenantID, email)
		if err != nil {
			return fmt.Errorf("queue create: -member: %w", explain(err))
		}
		q.Members = append(q.Members, id)
	}
	if err := qs.CreateQueue(ctx, q); err != nil {
		return fmt.Errorf("queue create: %w", explain(err))
	}
	fmt.Fprintln(stdout, q.ID)
	return nil
}

// runRetentionRun is `switchboard retention run`: one sweep of every data
// class now, as serve does every -retention-sweep; with -dry-run it only
// counts what would go.
func runRetentionRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("retention run", "Removes what has passed each tenant's retention: SIP traces and quality samples deleted,\n"+
		"call records anonymised, old webhook payloads deleted, recordings destroyed (with -recordings set as for serve).", stderr)
	config := configFlags(fs, nil)
	dryRun := fs.Bool("dry-run", false, "count what would be removed, remove nothing")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := config()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	db, err := openDB(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	calls := metadata.NewCallStore(db)
	var r metadata.RetentionReport
	if *dryRun {
		r, err = calls.ExpiredData(ctx)
	} else {
		r, err = calls.SweepData(ctx, func(n int64) { fmt.Fprintf(stderr, "\rcall records anonymised: %d", n) })
		if r.Calls > 0 {
			fmt.Fprintln(stderr)
		}
	}
	if err != nil {
		return fmt.Errorf("retention run: %w", err)
	}
	verb := "removed"
	if *dryRun {
		verb = "would be removed"
	}
	fmt.Fprintf(stdout, "SIP messages %s: %d\nquality samples %s: %d\ncall records anonymised%s: %d (timeline entries: %d)\nwebhook payloads %s: %d\n",
		verb, r.SIPMessages, verb, r.QualitySamples, map[bool]string{true: " (would be)"}[*dryRun], r.Calls, r.Events, verb, r.WebhookDeliveries)
	if c.Recordings == "" {
		fmt.Fprintln(stdout, "recordings: not configured here (-recordings), not swept")
		return nil
	}
	records := metadata.NewRecordingStore(db)
	if *dryRun {
		expired, err := records.ExpiredRecordings(ctx, time.Now(), 100000)
		if err != nil {
			return fmt.Errorf("retention run: %w", err)
		}
		fmt.Fprintf(stdout, "recordings %s: %d\n", verb, len(expired))
		return nil
	}
	store, err := openRecordingStore(ctx, c)
	if err != nil {
		return err
	}
	svc := recordings.NewService(store, c.Keyring, records, recordings.WithEvents(calls), recordings.WithAudit(metadata.NewAuditLog(db)))
	n, err := svc.Sweep(ctx)
	fmt.Fprintf(stdout, "recordings destroyed: %d\n", n)
	if err != nil {
		return fmt.Errorf("retention run: %w", err)
	}
	return nil
}
