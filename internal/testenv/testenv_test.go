package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-voice/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDatabaseURL(t *testing.T) {
	var first string
	t.Run("a", func(t *testing.T) {
		first = testenv.DatabaseURL(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("fresh database has %d tables", n)
		}
	})
	second := testenv.DatabaseURL(t)
	if first == second {
		t.Fatalf("two tests got the same database %s", first)
	}
	// The first test's database was dropped at its end.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, first); err == nil {
		conn.Close(ctx)
		t.Errorf("database %s still exists after its test ended", first)
	}
}
