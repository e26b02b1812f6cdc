package metadata

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pgCost measures what PostgreSQL spends on a benchmark's writes: the CPU
// of its processes (from /proc, Linux only) and the statements' execution
// time from pg_stat_statements.
type pgCost struct {
	db         *DB
	postmaster int
}

type pgCostSample struct {
	cpu  time.Duration // user and system time of the postmaster and its children
	exec float64       // pg_stat_statements' total_exec_time, ms
	wal  int64         // WAL position, bytes
	blks int64         // shared buffers the statements hit or read
}

// clockTick is USER_HZ, /proc/<pid>/stat's unit of CPU time: 100 on
// every Linux that Go runs on.
const clockTick = 10 * time.Millisecond

func newPgCost(db *DB, dataDir string) (*pgCost, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return nil, err
	}
	return &pgCost{db: db, postmaster: pid}, nil
}

func (p *pgCost) sample(ctx context.Context) (pgCostSample, error) {
	var s pgCostSample
	if err := p.db.pool.QueryRow(ctx, `SELECT COALESCE(sum(total_exec_time), 0), COALESCE(sum(shared_blks_hit + shared_blks_read), 0),
		pg_current_wal_lsn() - '0/0' FROM pg_stat_statements`).Scan(&s.exec, &s.blks, &s.wal); err != nil {
		return s, err
	}
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return s, err
	}
	for _, path := range procs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited
		}
		// Fields after the command, which may hold spaces: state ppid ...
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		ppid, _ := strconv.Atoi(f[1])
		if pid != p.postmaster && ppid != p.postmaster {
			continue
		}
		// utime stime cutime cstime are fields 14-17 of stat, 11-14 here.
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			s.cpu += time.Duration(n) * clockTick
		}
	}
	return s, nil
}

// report adds PostgreSQL's CPU and execution time per call since before.
func (p *pgCost) report(ctx context.Context, b *testing.B, before pgCostSample, calls int) {
	after, err := p.sample(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((after.cpu-before.cpu).Microseconds())/1000/float64(calls), "pg-cpu-ms/call")
	b.ReportMetric((after.exec-before.exec)/float64(calls), "pg-exec-ms/call")
	b.ReportMetric(float64(after.wal-before.wal)/float64(calls), "wal-B/call")
	b.ReportMetric(float64(after.blks-before.blks)/float64(calls), "blks/call")
}

// top logs the statements PostgreSQL spent most on, per call.
func (p *pgCost) top(ctx context.Context, b *testing.B, calls int) {
	rows, err := p.db.pool.Query(ctx, `SELECT calls, total_exec_time, shared_blks_hit + shared_blks_read, left(regexp_replace(query, '\s+', ' ', 'g'), 90)
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out strings.Builder
	for rows.Next() {
		var n, r int64
		var ms float64
		var q string
		if err := rows.Scan(&n, &ms, &r, &q); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&out, "\n%7d %8.0f ms %7.3f ms/call %7d rows  %s", n, ms, ms/float64(calls), r, q)
	}
	b.Logf("top statements for %d calls:%s", calls, out.String())
}
