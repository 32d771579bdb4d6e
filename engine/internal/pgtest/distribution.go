package pgtest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The path past one primary is a Postgres distributed by patient (Citus; see
// docs/scaling.md): a statement that names its patient goes to one shard,
// one that does not goes to every shard. checkPatientKeys keeps the second
// kind deliberate: every statement on a patient-owned table must constrain
// the table's patient key, or be on crossPatient with the reason it may not.

// patientKeyless are tables with a patient_id column that are not
// distributed by patient: reference tables copied to every node (users), and
// the logs whose order spans patients (the audit chain, the event log).
var patientKeyless = []string{"users", "audit_entries", "events"}

// patientKeyOf is the key of patient-owned tables without a patient_id
// column: a patient's own row, and a thread's messages and receipts (a
// thread belongs to one patient; both gain the thread's patient_id before
// distribution).
var patientKeyOf = map[string]string{"patients": `\bid\b`, "messages": `\bthread_id\b`, "thread_receipts": `\bthread_id\b`}

// crossPatient is the reviewed list of statements that read or write
// patient-owned rows of several patients at once (or rows of no patient), by
// package and name, with why that is right. docs/scaling.md says what each
// costs when distributed.
// inOtherFile marks reviewed statements declared in a package's second
// statement file (queries_broadcast.go), which queries.go's staleness check
// must not report.
var inOtherFile = map[string]bool{
	"engine/messaging.insertBroadcastMessagesSQL": true,
}

var crossPatient = map[string]string{
	// Batches of a group commit or of a worker: one statement for many patients' alerts.
	"engine/alerting.markEscalationsSQL":          "escalation sweep: the overdue alerts of many patients, in one statement",
	"engine/alerting.markNotifiedSQL":             "a group commit's alerts (several patients)",
	"engine/alerting.markUndeliveredSQL":          "a group commit's alerts (several patients)",
	"engine/alerting.scheduleEscalationsSQL":      "a group commit's alerts (several patients)",
	"engine/messaging.lockThreadsSQL":             "a group commit's threads (several patients, and team threads of none)",
	"engine/messaging.numberSQL":                  "a group commit's threads (several patients)",
	"engine/messaging.insertBroadcastMessagesSQL": "a broadcast batch appends one copy to each of many patients' threads",
	// Sweeps, counts and maintenance over every patient.
	"engine/internal/metrics.undeliveredSQL": "the tend_alerts_undelivered gauge counts every patient's alerts",
	"engine/triage.countAlertsSQL":           "triage counts per urgency over a team's patients",
	"engine/reminder.claimMissedSQL":         "missed-dose sweep over every patient's due doses",
	"engine/reminder.activeSchedulesSQL":     "the materialiser walks every patient's active schedules",
	"engine/messaging.resealMessagesSQL":     "key rotation re-seals every thread's messages",
	"engine/messaging.resealNotesSQL":        "key rotation re-seals every patient's symptom notes",
	"engine/messaging.countSealedSQL":        "key rotation counts what is left under old keys, over every patient",
	"engine/records.eraseE2EEDevicesSQL":     "erasure checks whether any message names one of the patient's e2ee devices (by device id)",
	"engine/retention.orgThreadsSQL":         "retention walks an organisation's threads, in pages",
	"engine/retention.countMessagesSQL":      "a retention dry run counts an organisation's expired messages",
	"engine/retention.countAttachmentsSQL":   "a retention dry run counts an organisation's expired attachments",
	// Threads of no patient: a team's staff channel, direct messages.
	"engine/internal/thread.insertTeamThreadSQL": "a team's staff channel belongs to no patient",
	"engine/messaging.insertDirectSQL":           "a direct thread between two staff members belongs to no patient",
}

// byRowID is the reviewed list of single-patient statements that find their
// row by its own id (an alert, dose, retake, schedule, message or thread id)
// rather than by patient. On one primary an id is as good as a patient id;
// distributed, each needs the row's patient_id added (the caller has it)
// before it can go to one shard (docs/scaling.md, "Before distributing").
var byRowID = map[string]string{
	"engine/alerting.setEscalationDueSQL":     "alert id",
	"engine/delivery.markAlertUndeliveredSQL": "alert id",
	"engine/triage.ackAlertSQL":               "alert id",
	"engine/triage.assignAlertSQL":            "alert id",
	"engine/triage.assigneeOKSQL":             "alert id",
	"engine/triage.resolveAlertSQL":           "alert id",
	"engine/triage.snoozeAlertSQL":            "alert id",
	"engine/reminder.cancelPendingDosesSQL":   "schedule id",
	"engine/reminder.dropFutureDosesSQL":      "schedule id",
	"engine/reminder.decideDoseSQL":           "dose id",
	"engine/reminder.markRemindedSQL":         "dose id",
	"engine/reminder.markRemindedAgainSQL":    "dose id",
	"engine/reminder.setMissedCheckSQL":       "dose id",
	"engine/reminder.deleteScheduleSQL":       "schedule id",
	"engine/reminder.updateScheduleSQL":       "schedule id",
	"engine/alerting.decideRetakeSQL":         "retake id",
	"engine/alerting.lockRetakeSQL":           "retake id",
	"engine/alerting.timeOutRetakeSQL":        "retake id",
	"engine/messaging.pushMessageSQL":         "message id",
	"engine/messaging.encryptThreadSQL":       "thread id",
}

// checkPatientKeys fails for a statement of queries that names a
// patient-owned table without its patient key and is not on a reviewed list.
func checkPatientKeys(t *testing.T, conn *pgx.Conn, file string, queries map[string]string) {
	t.Helper()
	tables, err := patientTables(conn)
	if err != nil {
		t.Fatalf("pgtest: patient-owned tables: %v", err)
	}
	for _, p := range patientKeyProblems(tables, packageOf(t), file, queries) {
		t.Error(p)
	}
}

// patientKeyProblems lists the statements of queries (of package pkg's
// file) that name a table of tables without its key and are on no reviewed
// list, and the reviewed entries that are wrong or stale.
func patientKeyProblems(tables map[string]string, pkg, file string, queries map[string]string) []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(queries)) {
		sql := stripComments(queries[name])
		id := pkg + "." + name
		var missing []string
		for table, key := range tables {
			if names(sql, table) && !regexp.MustCompile(`(?i)`+key).MatchString(sql) {
				missing = append(missing, table)
			}
		}
		_, cross := crossPatient[id]
		_, byID := byRowID[id]
		reviewed := cross || byID
		switch {
		case len(missing) > 0 && !reviewed:
			slices.Sort(missing)
			problems = append(problems, fmt.Sprintf("%s: %s reads or writes %s without its patient key: constrain it, or add %q to "+
				"crossPatient or byRowID (engine/internal/pgtest/distribution.go) with the reason, and see docs/scaling.md",
				file, name, strings.Join(missing, ", "), id))
		case len(missing) == 0 && reviewed:
			problems = append(problems, fmt.Sprintf("%s: %s is on a reviewed list but names its patient: take it off the list", file, name))
		}
	}
	if filepath.Base(file) != "queries.go" {
		return problems
	}
	for _, list := range []map[string]string{crossPatient, byRowID} {
		for id := range list {
			if p, name, _ := strings.Cut(id, "."); p == pkg && queries[name] == "" && !inOtherFile[id] {
				problems = append(problems, fmt.Sprintf("a reviewed list names %s, which %s does not declare", id, file))
			}
		}
	}
	return problems
}

// patientTables maps every patient-owned table to the regular expression of
// its patient key.
func patientTables(conn *pgx.Conn) (map[string]string, error) {
	rows, err := conn.Query(context.Background(), `SELECT DISTINCT c.relname FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE a.attname = 'patient_id' AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
		AND n.nspname = 'public' AND NOT c.relispartition`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	tables := map[string]string{}
	for _, n := range names {
		if !slices.Contains(patientKeyless, n) {
			tables[n] = `\bpatient_id\b`
		}
	}
	for n, key := range patientKeyOf {
		tables[n] = key
	}
	return tables, nil
}

// names reports whether sql reads or writes table (a partition of it too).
func names(sql, table string) bool {
	return regexp.MustCompile(`(?i)\b(from|join|into|update)\s+(only\s+)?` + table + `(_y\d+m\d+)?\b`).MatchString(sql)
}

var comment = regexp.MustCompile(`--[^\n]*`)

func stripComments(sql string) string { return comment.ReplaceAllString(sql, "") }

// packageOf is the test's package directory relative to the module root
// ("engine/ingest").
func packageOf(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, _ := filepath.Rel(dir, wd)
			return filepath.ToSlash(rel)
		}
	}
	return filepath.Base(wd)
}
