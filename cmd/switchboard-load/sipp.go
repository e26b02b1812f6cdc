package main

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// The SIPp run measures signalling alone under the very load
// scripts/bench.sh sends through Kamailio: SIPp's built-in UAC calls the
// load tenant's number at a fixed rate; the number's queue has no
// operators and sends each call on at once to SIPp's built-in UAS, so
// switchboard is a back-to-back user agent for both legs and writes every
// call's record and timeline. No browsers, no media: what a call's SIP
// handling and bookkeeping cost.

// sippReport is what a SIPp run measured.
type sippReport struct {
	Rate       float64 `json:"calls_per_second_asked"`
	Calls      int     `json:"calls_placed"`
	Successful int     `json:"calls_successful"`
	Failed     int     `json:"calls_failed"`
	// Shed is how many 503s the service sent to INVITEs: new calls it
	// refused at once for being behind (a retransmitted INVITE is answered
	// again); -1: its /metrics was not reachable.
	Shed    int     `json:"calls_shed"`
	Records int     `json:"records_completed"`
	Elapsed float64 `json:"elapsed_s"`
	// Achieved is successful calls over the time SIPp took to place them.
	Achieved     float64 `json:"calls_per_second_achieved"`
	SetupAvgMS   float64 `json:"setup_ms_avg"`
	CPUSeconds   float64 `json:"service_cpu_s"`
	CPUMSPerCall float64 `json:"service_cpu_ms_per_call"`
}

// runSIPp provisions the forwarding tenant, runs SIPp's UAS and UAC, and
// returns what it measured.
func runSIPp(ctx context.Context, c *config, stderr io.Writer) (*sippReport, error) {
	if _, err := exec.LookPath("sipp"); err != nil {
		return nil, errors.New("-sipp needs SIPp (Debian package sip-tester; scripts/deps.sh installs it)")
	}
	work := c.SIPpLogs
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "switchboard-load-sipp"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	uasPort, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	db, err := metadata.Open(ctx, c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	defer db.Close()
	conn, err := pgx.Connect(ctx, c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	defer conn.Close(context.Background())
	tenant, number, err := provisionForwarding(ctx, db, fmt.Sprintf("sip:uas@127.0.0.1:%d", uasPort))
	if err != nil {
		return nil, err
	}
	if err := fillHistory(ctx, conn, tenant, number, historyCalls); err != nil {
		return nil, err
	}

	uas := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort), "-nostdin",
		"-trace_err", "-error_file", "uas-errors.log")
	uas.Dir = work
	if err := uas.Start(); err != nil {
		return nil, fmt.Errorf("SIPp UAS: %w", err)
	}
	defer func() {
		uas.Process.Kill()
		uas.Wait()
	}()

	calls := int(c.Rate * c.Duration.Seconds())
	uacPort, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	shedBefore, metricsErr := scrapeRuntime(ctx, c.MetricsURL, c.MetricsToken)
	var before procSample
	if c.PID > 0 {
		if before, err = sampleProc(c.PID); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stderr, "switchboard-load: SIPp places %d calls at %g/s, each held %s, forwarded to SIPp's UAS\n", calls, c.Rate, c.Hold)
	start := time.Now()
	uac := exec.CommandContext(ctx, "sipp", "-sn", "uac", "-s", number, "-i", "127.0.0.1", "-p", strconv.Itoa(uacPort),
		"-r", strconv.FormatFloat(c.Rate, 'f', -1, 64), "-m", strconv.Itoa(calls), "-l", strconv.Itoa(int(c.Rate*(c.Hold.Seconds()+3))),
		"-d", strconv.FormatInt(c.Hold.Milliseconds(), 10), "-timeout", fmt.Sprintf("%ds", int((c.Duration+c.Hold+time.Minute).Seconds())), "-nostdin",
		"-trace_stat", "-stf", "stat.csv", "-trace_err", "-error_file", "errors.log", c.SIPAddr)
	uac.Dir = work
	out, err := uac.CombinedOutput()
	elapsed := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("SIPp UAC: %v: %s", err, out) // SIPp exits non-zero when calls failed: that is a figure
	}
	stats, err := readSIPpStats(filepath.Join(work, "stat.csv"))
	if err != nil {
		return nil, fmt.Errorf("SIPp UAC: %v: %s", err, out)
	}
	rep := &sippReport{Rate: c.Rate, Calls: calls, Successful: stats.successful, Failed: stats.failed,
		Elapsed: elapsed.Seconds(), SetupAvgMS: stats.responseMS}
	if elapsed > c.Hold {
		rep.Achieved = float64(rep.Successful) / (elapsed - c.Hold).Seconds()
	}
	rep.Shed = -1
	if metricsErr == nil {
		if after, err := scrapeRuntime(ctx, c.MetricsURL, c.MetricsToken); err == nil {
			rep.Shed = int(after.Shed - shedBefore.Shed)
		}
	}
	if c.PID > 0 {
		after, err := sampleProc(c.PID)
		if err != nil {
			return nil, err
		}
		rep.CPUSeconds = after.CPUSeconds - before.CPUSeconds
		if calls > 0 {
			rep.CPUMSPerCall = rep.CPUSeconds * 1000 / float64(calls)
		}
	}
	if rep.Records, err = completedRecords(ctx, conn, tenant, rep.Successful); err != nil {
		return nil, err
	}
	return rep, nil
}

// provisionForwarding makes a tenant whose trunk (any loopback source)
// has one number, led to a queue that has no operators and sends callers
// on to uri at once.
func provisionForwarding(ctx context.Context, db *metadata.DB, uri string) (sb.ID, string, error) {
	tag := make([]byte, 4)
	rand.Read(tag)
	id := hex.EncodeToString(tag)
	tenant := &sb.Tenant{Name: "load sipp " + id}
	if err := metadata.NewTenantService(db).CreateTenant(ctx, tenant); err != nil {
		return sb.ID{}, "", fmt.Errorf("provision tenant: %w", err)
	}
	if err := metadata.NewTenantService(db).SetDialTargets(ctx, tenant.ID, []string{"127.0.0.1"}); err != nil {
		return sb.ID{}, "", fmt.Errorf("provision dial targets: %w", err)
	}
	number := fmt.Sprintf("+1998%08d", int(tag[0])<<16|int(tag[1])<<8|int(tag[2]))
	trunk := &sb.Trunk{TenantID: tenant.ID, Name: "sipp", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Numbers: []string{number}}
	if err := metadata.NewTrunkService(db).CreateTrunk(ctx, trunk, ""); err != nil {
		return sb.ID{}, "", fmt.Errorf("provision trunk: %w", err)
	}
	q := &sb.Queue{TenantID: tenant.ID, Name: "forward", Numbers: []string{number}, Overflow: sb.Overflow{Kind: sb.OverflowURI, URI: uri}}
	if err := metadata.NewQueueStore(db).CreateQueue(ctx, q); err != nil {
		return sb.ID{}, "", fmt.Errorf("provision queue: %w", err)
	}
	return tenant.ID, number, nil
}

// historyCalls is how many past calls the tenant has before the run.
const historyCalls = 20000

// fillHistory gives the tenant calls of the past month, ended, and the
// database its statistics of them, as a deployment's database has: a
// table PostgreSQL has not analysed yet, as a new database's is for its
// first minute, plans a call's update through any index that starts with
// its tenant, and each update then reads every call of the tenant. The
// past calls are not completed: the run's records are counted apart.
func fillHistory(ctx context.Context, conn *pgx.Conn, tenant sb.ID, number string, n int) error {
	if _, err := conn.Exec(ctx, `INSERT INTO calls (id, tenant_id, direction, from_number, to_number, status, hangup_by, sip_code, created_at, ended_at)
		SELECT gen_random_uuid(), $1, 'inbound', '+1555' || lpad(i::text, 7, '0'), $2, 'no-answer', 'system', 480,
			now() - make_interval(secs => i * 130), now() - make_interval(secs => i * 130 - 20)
		FROM generate_series(1, $3::int) i`, tenant, number, n); err != nil {
		return fmt.Errorf("past calls: %w", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE calls"); err != nil {
		return fmt.Errorf("past calls: %w", err)
	}
	return nil
}

// completedRecords counts the tenant's completed call records, waiting
// up to 30 s for want of them: records are written in batches, after the
// calls.
func completedRecords(ctx context.Context, conn *pgx.Conn, tenant sb.ID, want int) (int, error) {
	var n int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		err := conn.QueryRow(ctx, "SELECT count(*) FROM calls WHERE tenant_id = $1 AND status = $2", tenant, sb.CallCompleted).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("counting records: %w", err)
		}
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
	}
}

// sippStats are the last cumulative figures of SIPp's statistics file.
type sippStats struct {
	successful, failed int
	responseMS         float64 // INVITE → 200, the average over the run
}

func readSIPpStats(path string) (sippStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return sippStats{}, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.FieldsPerRecord = ';', -1
	rows, err := r.ReadAll()
	if err != nil {
		return sippStats{}, fmt.Errorf("SIPp statistics: %w", err)
	}
	if len(rows) < 2 {
		return sippStats{}, errors.New("SIPp statistics: no rows")
	}
	head, last := rows[0], rows[len(rows)-1]
	field := func(name string) string {
		for i, h := range head {
			if h == name && i < len(last) {
				return last[i]
			}
		}
		return ""
	}
	var s sippStats
	s.successful, _ = strconv.Atoi(field("SuccessfulCall(C)"))
	s.failed, _ = strconv.Atoi(field("FailedCall(C)"))
	s.responseMS = sippDurationMS(field("ResponseTime1(C)"))
	return s, nil
}

// sippDurationMS reads SIPp's hh:mm:ss:mmm, whose last field has six
// digits (microseconds) in SIPp builds with microsecond timing.
func sippDurationMS(v string) float64 {
	parts := strings.Split(strings.TrimSpace(v), ":")
	if len(parts) != 4 {
		return 0
	}
	h, _ := strconv.ParseFloat(parts[0], 64)
	m, _ := strconv.ParseFloat(parts[1], 64)
	sec, _ := strconv.ParseFloat(parts[2], 64)
	frac, _ := strconv.ParseFloat(parts[3], 64)
	if len(parts[3]) == 6 {
		frac /= 1000
	}
	return ((h*60+m)*60+sec)*1000 + frac
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func (r *sippReport) print(w io.Writer) {
	fmt.Fprintf(w, "SIPp → switchboard → SIPp, %g calls/s asked\n", r.Rate)
	fmt.Fprintf(w, "  calls placed      %d in %.1f s\n", r.Calls, r.Elapsed)
	fmt.Fprintf(w, "  successful        %d (%.0f calls/s achieved)\n", r.Successful, r.Achieved)
	fmt.Fprintf(w, "  failed            %d (%s 503s sent: new calls refused at once)\n", r.Failed, r.shed())
	fmt.Fprintf(w, "  records completed %d\n", r.Records)
	fmt.Fprintf(w, "  setup (INVITE→200) %.1f ms on average\n", r.SetupAvgMS)
	if r.CPUSeconds > 0 {
		fmt.Fprintf(w, "  service CPU       %.1f s, %.2f ms per call\n", r.CPUSeconds, r.CPUMSPerCall)
	}
}

// sippHeader heads the table of SIPp runs.
const sippHeader = "| calls/s asked | calls placed | successful | failed (503s sent) | records completed | achieved calls/s | setup avg | service CPU per call |\n" +
	"|---|---|---|---|---|---|---|---|\n"

func (r *sippReport) appendMarkdown(path string) error {
	return appendRow(path, sippHeader, fmt.Sprintf("| %g | %d | %d | %d (%s) | %d | %.0f | %.1f ms | %.2f ms |\n",
		r.Rate, r.Calls, r.Successful, r.Failed, r.shed(), r.Records, r.Achieved, r.SetupAvgMS, r.CPUMSPerCall))
}

// shed is Shed as a figure, or "?" when the service's metrics were not
// reachable.
func (r *sippReport) shed() string {
	if r.Shed < 0 {
		return "?"
	}
	return strconv.Itoa(r.Shed)
}
