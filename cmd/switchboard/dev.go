package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/pglocal"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
)

// devInfo is what `switchboard dev` prints and writes to
// switchboard-dev.json in its data folder, for people and scripts.
type devInfo struct {
	DatabaseURL      string `json:"database_url"`
	HTTPURL          string `json:"http_url"`
	SIPAddr          string `json:"sip_addr"`
	TenantID         sb.ID  `json:"tenant_id"`
	OperatorEmail    string `json:"operator_email"`
	OperatorPassword string `json:"operator_password"`
	APIKey           string `json:"api_key"`
	Number           string `json:"number"`
}

const devNumber = "1000"

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "Runs the service for a first look: a private PostgreSQL in -data-dir (unless a\n"+
		"database URL is given), a demo tenant, operator, trunk for 127.0.0.1 and API key.", stderr)
	config := configFlags(fs, map[string]string{"http-addr": "127.0.0.1:8080", "sip-addr": "127.0.0.1:5060", "log-format": "text"})
	dataDir := fs.String("data-dir", envOr("SWITCHBOARD_DATA_DIR", defaultDataDir()), "folder for the private database and switchboard-dev.json [SWITCHBOARD_DATA_DIR]")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := config()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logger := newLogger(stderr, c.LogLevel, c.LogFormat, c.LogLevels)
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	// Open to others: PostgreSQL runs as its own user when we are root and
	// must pass through; switchboard-dev.json itself is 0600.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}

	if !isSet(fs, "journal", "SWITCHBOARD_JOURNAL") {
		// The journal belongs to this data folder's database: a second
		// dev instance started from the same folder must not replay its
		// records into another database.
		c.Journal = filepath.Join(dir, "journal")
	}
	if c.Recordings == "" {
		// Consented recordings go to a folder beside the database, sealed
		// with a keyring made for this data folder.
		if c.Keyring, err = devKeyring(filepath.Join(dir, "keyring")); err != nil {
			return err
		}
		c.Recordings = filepath.Join(dir, "recordings")
	}

	if c.DatabaseURL == "" {
		pg, err := pglocal.Start(ctx, filepath.Join(dir, "postgres"))
		if errors.Is(err, pglocal.ErrNotInstalled) {
			return fmt.Errorf("%w\n(or point -database-url at an existing PostgreSQL)", err)
		} else if err != nil {
			return fmt.Errorf("private PostgreSQL: %w", err)
		}
		defer pg.Stop()
		if c.DatabaseURL, err = pg.CreateDatabase(ctx, "switchboard"); err != nil {
			return fmt.Errorf("private PostgreSQL: %w", err)
		}
		logger.Info("private PostgreSQL running", "data", filepath.Join(dir, "postgres"))
	}

	m := NewMain(c, logger)
	if err := m.Run(ctx); err != nil {
		return err
	}
	info, err := ensureDemo(ctx, m.DB, filepath.Join(dir, "switchboard-dev.json"))
	if err != nil {
		m.Close()
		return fmt.Errorf("demo data: %w", err)
	}
	info.DatabaseURL, info.HTTPURL, info.SIPAddr = c.DatabaseURL, browserURL(m.HTTPAddr()), m.SIPAddr()
	if err := writeDevInfo(filepath.Join(dir, "switchboard-dev.json"), info); err != nil {
		m.Close()
		return err
	}
	fmt.Fprintf(stdout, `
switchboard is running.

  Operator page   %s
  Login           %s
  Password        %s
  SIP             sip:%s@%s  (UDP and TCP; calls from 127.0.0.1 are accepted)
  API key         %s
                  curl -H 'Authorization: Bearer %s' %s/v1/calls

  Try a call:     sipp -sf testdata/sipp/uac_pcap.xml -s %s -i 127.0.0.1 -mi 127.0.0.1 -m 1 %s
  These details are also in %s.
  Stop with Ctrl-C.
`, info.HTTPURL, info.OperatorEmail, info.OperatorPassword, info.Number, info.SIPAddr,
		info.APIKey, info.APIKey, info.HTTPURL, info.Number, info.SIPAddr, filepath.Join(dir, "switchboard-dev.json"))
	return waitForSignal(ctx, m, c.DrainTimeout)
}

// ensureDemo creates the demo tenant, operator, trunk and API key the first
// time, and reuses them (as recorded in path) afterwards.
func ensureDemo(ctx context.Context, db *metadata.DB, path string) (*devInfo, error) {
	var prev devInfo
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &prev); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if _, err := metadata.NewTenantService(db).FindTenantByID(ctx, prev.TenantID); err == nil {
			return &prev, nil
		}
	}
	t := &sb.Tenant{Name: "Demo"}
	if err := metadata.NewTenantService(db).CreateTenant(ctx, t); err != nil {
		return nil, err
	}
	info := &devInfo{TenantID: t.ID, OperatorEmail: "operator@demo.test", OperatorPassword: randomPassword(), Number: devNumber}
	// A fresh database with an old email: make the login unique.
	if prev.OperatorEmail != "" {
		info.OperatorEmail = fmt.Sprintf("operator+%s@demo.test", t.ID.String()[:8])
	}
	u := &sb.User{TenantID: t.ID, Email: info.OperatorEmail, Name: "Demo Operator", Role: sb.RoleOperator}
	if err := metadata.NewUserService(db).CreateUser(ctx, u, info.OperatorPassword); err != nil {
		return nil, err
	}
	trunk := &sb.Trunk{
		TenantID: t.ID, Name: "local PBX", Numbers: []string{devNumber},
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	}
	if err := metadata.NewTrunkService(db).CreateTrunk(ctx, trunk, ""); err != nil {
		return nil, err
	}
	_, key, err := metadata.NewAPIKeyService(db).CreateAPIKey(ctx, t.ID, sb.RoleSupervisor)
	if err != nil {
		return nil, err
	}
	info.APIKey = key
	return info, nil
}

func writeDevInfo(path string, info *devInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

func randomPassword() string {
	const letters = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// browserURL turns a listen address into a URL a browser can open.
func browserURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// defaultDataDir is where dev keeps its database: beside the checkout, or,
// for root, in /var/lib, because PostgreSQL then runs as the postgres user,
// which usually cannot enter root's home.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/switchboard/dev"
	}
	return "switchboard-data"
}

// devKeyring loads the dev keyring from path, making one on first use.
func devKeyring(path string) (*recordings.Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		b = []byte("1:" + base64.StdEncoding.EncodeToString(key) + "\n")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("dev keyring: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("dev keyring: %w", err)
	}
	ring, err := recordings.ParseKeyring(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("dev keyring %s: %w", path, err)
	}
	return ring, nil
}

// isSet reports whether the setting name was given, as a flag of fs or in
// the environment variable env.
func isSet(fs *flag.FlagSet, name, env string) bool {
	set := os.Getenv(env) != ""
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
