// Command switchboard-load drives a running switchboard with emulated
// operators (pion, through opclient) and emulated trunks (sipgo, through
// siptest), all on loopback, and reports what users feel: call setup time,
// answer ratio, loss, jitter and delay per direction, audio integrity, and
// what the calls cost the service in CPU and memory.
//
//	switchboard-load -database-url URL -http-url http://127.0.0.1:8080 \
//	    -metrics-url http://127.0.0.1:9090/metrics -sip-addr 127.0.0.1:5060 \
//	    -pid $(pidof switchboard) -calls 200 -rate 50 -hold 20s -duration 60s -json out.json
//
// It provisions its own tenant, operators and trunk in the service's
// database, so it needs the database URL.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	DatabaseURL string `json:"-"`
	HTTPURL     string `json:"http_url"`
	MetricsURL  string `json:"metrics_url"`
	// MetricsToken is needed only when MetricsURL is on the service's
	// HTTP address.
	MetricsToken string        `json:"-"`
	SIPAddr      string        `json:"sip_addr"`
	PID          int           `json:"pid"`
	Operators    int           `json:"operators"`
	Calls        int           `json:"concurrent_calls"`
	Rate         float64       `json:"calls_per_second"`
	Hold         time.Duration `json:"hold"`
	Duration     time.Duration `json:"duration"`
	AnswerDelay  time.Duration `json:"answer_delay"`
	Transport    string        `json:"transport"`
	Codec        string        `json:"codec"`
	Recording    bool          `json:"recording"`
	Media        bool          `json:"media"`
	SIPp         bool          `json:"sipp,omitempty"`
	SIPpLogs     string        `json:"-"`
	Target       string        `json:"target"`              // switchboard or janus
	JanusURL     string        `json:"janus_url,omitempty"` // Janus's HTTP API, with -target janus
	JSON         string        `json:"-"`
	Markdown     string        `json:"-"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "switchboard-load:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.StringVar(&c.DatabaseURL, "database-url", os.Getenv("SWITCHBOARD_DATABASE_URL"), "the service's database, to provision the load tenant [SWITCHBOARD_DATABASE_URL]")
	fs.StringVar(&c.HTTPURL, "http-url", "http://127.0.0.1:8080", "the service's HTTP base URL")
	fs.StringVar(&c.MetricsURL, "metrics-url", "http://127.0.0.1:9090/metrics", "the service's /metrics, on its -metrics-addr (or on -http-url with -metrics-token)")
	fs.StringVar(&c.MetricsToken, "metrics-token", os.Getenv("SWITCHBOARD_METRICS_TOKEN"), "the service's metrics token, for /metrics on its HTTP address [SWITCHBOARD_METRICS_TOKEN]")
	for _, name := range []string{"database-url", "metrics-token"} {
		if f := fs.Lookup(name); f.DefValue != "" {
			f.DefValue = "(set)" // help must not print a password or token
		}
	}
	fs.StringVar(&c.SIPAddr, "sip-addr", "127.0.0.1:5060", "the service's SIP address")
	fs.IntVar(&c.PID, "pid", 0, "the service's process id, for its CPU and memory (0: not measured)")
	fs.IntVar(&c.Calls, "calls", 50, "concurrent calls to hold")
	fs.IntVar(&c.Operators, "operators", 0, "emulated operators (default: as many as -calls)")
	fs.Float64Var(&c.Rate, "rate", 20, "new calls per second while ramping up")
	fs.DurationVar(&c.Hold, "hold", 20*time.Second, "how long each call lasts")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "how long the run lasts; it stops by itself")
	fs.DurationVar(&c.AnswerDelay, "answer-delay", 0, "how long operators let a call ring")
	fs.StringVar(&c.Transport, "transport", "udp", "SIP transport: udp or tcp")
	fs.StringVar(&c.Codec, "codec", "PCMU", "the trunk's codec: PCMU (passes unchanged) or PCMA (converted toward the browser)")
	fs.BoolVar(&c.Recording, "recording", false, "record every call: the load tenant's policy takes consent and each INVITE carries X-Recording-Consent: yes (the service must have recordings configured; switchboard dev does)")
	fs.BoolVar(&c.Media, "media", true, "send and check audio; -media=false measures signalling alone")
	fs.StringVar(&c.Target, "target", "switchboard", "what the emulated browsers attach to: switchboard, or janus (Janus's SIP plugin, its handles registered with the registrar at -sip-addr; for a side-by-side run)")
	fs.StringVar(&c.JanusURL, "janus-url", "http://127.0.0.1:8088/janus", "Janus's HTTP API, with -target janus")
	fs.BoolVar(&c.SIPp, "sipp", false, "signalling alone through SIPp: SIPp's built-in UAC calls at -rate for -duration, each call held -hold, and switchboard forwards every call to SIPp's built-in UAS (a queue with no operators), writing its record; the same load scripts/bench.sh sends through Kamailio")
	fs.StringVar(&c.SIPpLogs, "sipp-logs", "", "with -sipp: keep SIPp's statistics and its log of unexpected messages and failed calls in this folder")
	fs.StringVar(&c.JSON, "json", "", "write the report as JSON to this file")
	fs.StringVar(&c.Markdown, "markdown", "", "append the report as a row of a Markdown table to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: switchboard-load [flags]\n\nDrives a running switchboard with emulated operators and trunks on loopback.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Operators == 0 {
		c.Operators = c.Calls
	}
	switch {
	case c.Target != "switchboard" && c.Target != "janus":
		return fmt.Errorf("-target %q is not switchboard or janus", c.Target)
	case c.DatabaseURL == "" && !c.isJanus():
		return errors.New("-database-url is required: the load tool provisions its own tenant")
	case c.Operators < c.Calls:
		return fmt.Errorf("-operators %d is fewer than -calls %d: an operator takes one call at a time", c.Operators, c.Calls)
	case c.Rate <= 0 || c.Calls <= 0:
		return errors.New("-rate and -calls must be positive")
	case c.Codec != "PCMU" && c.Codec != "PCMA":
		return fmt.Errorf("-codec %q is not PCMU or PCMA", c.Codec)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Duration+c.Hold+2*time.Minute)
	defer cancel()
	if c.SIPp {
		rep, err := runSIPp(ctx, c, stderr)
		if err != nil {
			return err
		}
		return deliver(c, rep, stdout)
	}
	r, err := newRun(ctx, c, stderr)
	if err != nil {
		return err
	}
	defer r.close()
	rep, err := r.execute(ctx)
	if err != nil {
		return err
	}
	return deliver(c, rep, stdout)
}

// result is a run's report, however it was measured.
type result interface {
	print(w io.Writer)
	appendMarkdown(path string) error
}

// deliver prints the report and writes it where -json and -markdown say.
func deliver(c *config, rep result, stdout io.Writer) error {
	rep.print(stdout)
	if c.JSON != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.JSON, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if c.Markdown != "" {
		return rep.appendMarkdown(c.Markdown)
	}
	return nil
}
