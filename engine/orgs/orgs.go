// Package orgs is organisations: the clinics that share one Tend. An
// operator (super_admin) creates them; each organisation's admins keep its
// settings — name, branding, default time zone, quiet hours and retention
// periods. Everyone else reads their own organisation's (the console and the
// patient app show its branding). Organisations hold no PHI, so an operator
// reads and changes them all.
package orgs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// Organisation is an organisation and its settings.
type Organisation struct {
	ID       uuid.UUID `json:"id"`
	Name     string    `json:"name"`
	Slug     string    `json:"slug"`
	Branding Branding  `json:"branding"`
	// Timezone is the default time zone of the organisation's users who set
	// none (IANA name).
	Timezone string `json:"timezone"`
	// QuietHours are the default quiet hours of the organisation's users who
	// set none; null: none.
	QuietHours *QuietHours `json:"quiet_hours"`
	Retention  Retention   `json:"retention"`
	// RecordKey is the organisation's record key, which its end-to-end
	// encrypted messages are also wrapped to (docs/e2ee.md); null: none
	// set (the default organisation then uses the server's
	// TEND_RECORD_PUBLIC_KEY).
	RecordKey *RecordKey `json:"record_key"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Branding is what the console and the patient app show of an organisation.
type Branding struct {
	// Name is the name shown (the organisation's name when unset).
	Name string `json:"name"`
	// PrimaryColor and AccentColor are #rrggbb; empty: Tend's own.
	PrimaryColor string `json:"primary_color,omitempty"`
	AccentColor  string `json:"accent_color,omitempty"`
	// LogoURL is where the logo is served, when there is one.
	LogoURL string `json:"logo_url,omitempty"`
}

// QuietHours is a daily window, HH:MM to HH:MM in the organisation's time
// zone (it may span midnight).
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// RecordKey is an organisation's record public key.
type RecordKey struct {
	ID        string `json:"id"`
	PublicKey []byte `json:"public_key"` // unpadded base64url in JSON
}

// MarshalJSON writes the key as unpadded base64url, as clients read it.
func (k RecordKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID        string `json:"id"`
		PublicKey string `json:"public_key"`
	}{k.ID, base64.RawURLEncoding.EncodeToString(k.PublicKey)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (k *RecordKey) UnmarshalJSON(b []byte) error {
	var w struct {
		ID        string `json:"id"`
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	pub, err := base64.RawURLEncoding.DecodeString(w.PublicKey)
	if err != nil {
		return fmt.Errorf("record key: %w", err)
	}
	k.ID, k.PublicKey = w.ID, pub
	return nil
}

// Retention is how long the organisation keeps each kind of data, in days;
// null keeps it for ever.
type Retention struct {
	ReadingsDays    *int `json:"readings_days"`
	MessagesDays    *int `json:"messages_days"`
	AttachmentsDays *int `json:"attachments_days"`
	DeliveriesDays  *int `json:"deliveries_days"`
}

// NewOrganisation is the input of Create.
type NewOrganisation struct {
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Timezone string `json:"timezone"`
}

// Optional is a field of an update: left out (Set false), set to null
// (Set, Null) or to a value.
type Optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON records that the field was present, and whether as null.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(&o.Value)
}

// Update is the input of Update: a field left out keeps its value.
type Update struct {
	Name       Optional[string]     `json:"name"`
	Branding   *BrandingUpdate      `json:"branding"`
	Timezone   Optional[string]     `json:"timezone"`
	QuietHours Optional[QuietHours] `json:"quiet_hours"`
	Retention  *RetentionUpdate     `json:"retention"`
	// RecordPublicKey is the new record key (an MLKEM768-X25519 public key,
	// unpadded base64url, as tend records keygen prints it); null removes it.
	RecordPublicKey Optional[string] `json:"record_public_key"`
}

// BrandingUpdate changes branding; null clears a field.
type BrandingUpdate struct {
	Name         Optional[string] `json:"name"`
	PrimaryColor Optional[string] `json:"primary_color"`
	AccentColor  Optional[string] `json:"accent_color"`
}

// RetentionUpdate changes retention periods; null keeps that data for ever.
type RetentionUpdate struct {
	ReadingsDays    Optional[int] `json:"readings_days"`
	MessagesDays    Optional[int] `json:"messages_days"`
	AttachmentsDays Optional[int] `json:"attachments_days"`
	DeliveriesDays  Optional[int] `json:"deliveries_days"`
}

// Logo is an organisation's logo.
type Logo struct {
	ContentType string
	Data        []byte
	UpdatedAt   time.Time
}

// MaxLogoBytes bounds a logo.
const MaxLogoBytes = 256 << 10

// Config wires a Service.
type Config struct {
	Pool  *pgxpool.Pool
	Now   func() time.Time
	Audit audit.Writer
}

// Service is the organisations use case.
type Service struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	audit audit.Writer
}

// New returns a Service.
func New(cfg Config) *Service { return &Service{pool: cfg.Pool, now: cfg.Now, audit: cfg.Audit} }

var (
	slugRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	colorRE = regexp.MustCompile(`^#[0-9a-f]{6}$`)
	hhmmRE  = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// operator reports whether a acts across organisations: an operator or Tend
// itself.
func operator(a access.Actor) bool { return a.Role == access.RoleSuperAdmin || a.IsSystem() }

// Create creates an organisation (operators and Tend itself only).
func (s *Service) Create(ctx context.Context, a access.Actor, in NewOrganisation) (Organisation, error) {
	if !operator(a) {
		return Organisation{}, fmt.Errorf("role %s: %w", a.Role, access.ErrForbidden)
	}
	var v rpm.ValidationError
	check.Name(&v, "name", in.Name)
	if !slugRE.MatchString(in.Slug) {
		v.Add("slug", "must be 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit")
	}
	if in.Timezone == "" {
		in.Timezone = "UTC"
	} else if _, err := check.LoadZone(in.Timezone); err != nil {
		v.Add("timezone", "must be an IANA time zone name, such as Europe/London")
	}
	if err := v.OrNil(); err != nil {
		return Organisation{}, err
	}
	id, now := pg.NewID(), s.now()
	var o Organisation
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		o, err = scan(tx.QueryRow(ctx, insertOrgSQL, id, in.Name, in.Slug, in.Timezone, now))
		if pg.IsUniqueViolation(err) {
			return check.FieldError("slug", "is taken by another organisation")
		}
		if err != nil {
			return fmt.Errorf("create organisation: %w", err)
		}
		return s.audit.Write(ctx, tx, withOrg(a, id), audit.Entry{Action: "organisation.create", ObjectType: "organisation", ObjectID: id.String()})
	})
	return o, err
}

// List lists organisations by name: all of them for an operator, the
// caller's own for anyone else.
func (s *Service) List(ctx context.Context, a access.Actor) ([]Organisation, error) {
	if a.UserID == uuid.Nil && !a.IsSystem() {
		return nil, access.ErrUnauthenticated
	}
	rows, err := s.pool.Query(ctx, listOrgsSQL, orgFilter(a))
	if err != nil {
		return nil, fmt.Errorf("list organisations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Organisation, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("list organisations: %w", err)
	}
	return out, nil
}

// orgFilter is the organisation a caller reads: nil (all) for operators.
func orgFilter(a access.Actor) *uuid.UUID {
	if operator(a) {
		return nil
	}
	return &a.OrgID
}

// Get reads an organisation: an operator any, anyone else their own (others
// are not found).
func (s *Service) Get(ctx context.Context, a access.Actor, id uuid.UUID) (Organisation, error) {
	if !operator(a) && a.OrgID != id {
		return Organisation{}, fmt.Errorf("organisation: %w", access.ErrNotFound)
	}
	o, err := scan(s.pool.QueryRow(ctx, getOrgSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Organisation{}, fmt.Errorf("organisation: %w", access.ErrNotFound)
	}
	if err != nil {
		return Organisation{}, fmt.Errorf("get organisation: %w", err)
	}
	return o, nil
}

// mayManage checks that a may change organisation id: an operator, or an
// admin of it. Anyone else of it is forbidden; anyone of another is told it
// does not exist.
func mayManage(a access.Actor, id uuid.UUID) error {
	switch {
	case operator(a):
		return nil
	case a.OrgID != id:
		return fmt.Errorf("organisation: %w", access.ErrNotFound)
	}
	return access.Require(a, access.RoleAdmin)
}

// brandingChanges checks a branding update into set.
func brandingChanges(v *rpm.ValidationError, set map[string]any, b *BrandingUpdate) {
	if b.Name.Set {
		if b.Name.Null || b.Name.Value == "" {
			set["brand_name"] = nil
		} else {
			check.Name(v, "branding.name", b.Name.Value)
			set["brand_name"] = b.Name.Value
		}
	}
	for _, c := range []struct {
		field, column string
		o             Optional[string]
	}{{"branding.primary_color", "brand_primary", b.PrimaryColor}, {"branding.accent_color", "brand_accent", b.AccentColor}} {
		if !c.o.Set {
			continue
		}
		if c.o.Null || c.o.Value == "" {
			set[c.column] = nil
			continue
		}
		col := strings.ToLower(c.o.Value)
		if !colorRE.MatchString(col) {
			v.Add(c.field, "must be a colour as #rrggbb")
			continue
		}
		set[c.column] = col
	}
}

// changes checks an update and returns the columns it sets (nil clears one)
// and the audit entry's detail, or the fields in error. Pure.
func changes(in Update) (map[string]any, map[string]any, error) {
	var v rpm.ValidationError
	set := map[string]any{}
	if in.Name.Set {
		if in.Name.Null {
			v.Add("name", "must not be null")
		} else {
			check.Name(&v, "name", in.Name.Value)
			set["name"] = in.Name.Value
		}
	}
	if in.Branding != nil {
		brandingChanges(&v, set, in.Branding)
	}
	if in.Timezone.Set {
		if _, err := check.LoadZone(in.Timezone.Value); in.Timezone.Null || in.Timezone.Value == "" || err != nil {
			v.Add("timezone", "must be an IANA time zone name, such as Europe/London")
		} else {
			set["timezone"] = in.Timezone.Value
		}
	}
	if in.QuietHours.Set {
		q := in.QuietHours.Value
		switch {
		case in.QuietHours.Null:
			set["quiet_start"], set["quiet_end"] = nil, nil
		case !hhmmRE.MatchString(q.Start):
			v.Add("quiet_hours.start", "must be HH:MM")
		case !hhmmRE.MatchString(q.End):
			v.Add("quiet_hours.end", "must be HH:MM")
		case q.Start == q.End:
			v.Add("quiet_hours.end", "must differ from start")
		default:
			set["quiet_start"], set["quiet_end"] = q.Start, q.End
		}
	}
	if r := in.Retention; r != nil {
		for _, c := range []struct {
			field, column string
			o             Optional[int]
		}{{"readings_days", "retain_readings_days", r.ReadingsDays}, {"messages_days", "retain_messages_days", r.MessagesDays},
			{"attachments_days", "retain_attachments_days", r.AttachmentsDays}, {"deliveries_days", "retain_deliveries_days", r.DeliveriesDays}} {
			switch {
			case !c.o.Set:
			case c.o.Null:
				set[c.column] = nil
			case c.o.Value < 1 || c.o.Value > 36500:
				v.Add("retention."+c.field, "must be from 1 to 36500 days, or null to keep for ever")
			default:
				set[c.column] = c.o.Value
			}
		}
	}
	detail := map[string]any{}
	if in.RecordPublicKey.Set {
		if in.RecordPublicKey.Null {
			set["record_public_key"] = nil
			detail["record_key_id"] = nil
		} else if key, err := e2ee.ParseRecordPublicKey(in.RecordPublicKey.Value); err != nil {
			v.Add("record_public_key", err.Error())
		} else {
			set["record_public_key"] = key
			detail["record_key_id"] = e2ee.RecordKeyID(key)
		}
	}
	return set, detail, v.OrNil()
}

// Update changes an organisation's settings (its admins and operators).
func (s *Service) Update(ctx context.Context, a access.Actor, id uuid.UUID, in Update) (Organisation, error) {
	if err := mayManage(a, id); err != nil {
		return Organisation{}, err
	}
	set, detail, err := changes(in)
	if err != nil {
		return Organisation{}, err
	}
	var o Organisation
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		args := []any{id, s.now()}
		flags := make([]bool, len(updatable))
		fields := make([]string, 0, len(set))
		for i, col := range updatable {
			val, ok := set[col]
			args, flags[i] = append(args, val), ok
			if ok {
				fields = append(fields, col)
			}
		}
		var err error
		o, err = scan(tx.QueryRow(ctx, updateOrgSQL, append(args, flags)...))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("organisation: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update organisation: %w", err)
		}
		// A change of the record key is in the hash-chained trail with the
		// new key's id, so a key swapped behind the admins' backs shows.
		detail["fields"] = fields
		return s.audit.Write(ctx, tx, withOrg(a, id), audit.Entry{Action: "organisation.update", ObjectType: "organisation",
			ObjectID: id.String(), Detail: detail})
	})
	return o, err
}

// updatable lists the columns Update may set, in a fixed order.
var updatable = []string{"name", "brand_name", "brand_primary", "brand_accent", "timezone", "quiet_start", "quiet_end",
	"retain_readings_days", "retain_messages_days", "retain_attachments_days", "retain_deliveries_days", "record_public_key"}

// withOrg is a for an audit entry about organisation id (an operator
// belongs to none).
func withOrg(a access.Actor, id uuid.UUID) access.Actor {
	a.OrgID = id
	return a
}

// logoTypes are the logo formats accepted, by their leading bytes (an SVG
// could carry a script, so it is not one of them).
var logoTypes = map[string][]byte{
	"image/png":  []byte("\x89PNG\r\n\x1a\n"),
	"image/jpeg": {0xff, 0xd8, 0xff},
	"image/webp": []byte("RIFF"),
}

// SetLogo replaces an organisation's logo (its admins and operators); an
// empty data removes it.
func (s *Service) SetLogo(ctx context.Context, a access.Actor, id uuid.UUID, contentType string, data []byte) (Organisation, error) {
	if err := mayManage(a, id); err != nil {
		return Organisation{}, err
	}
	var ct *string
	var body []byte
	if len(data) > 0 {
		magic, ok := logoTypes[contentType]
		switch {
		case !ok:
			return Organisation{}, check.FieldError("Content-Type", "must be image/png, image/jpeg or image/webp")
		case len(data) > MaxLogoBytes:
			return Organisation{}, check.FieldError("logo", fmt.Sprintf("must be at most %d bytes", MaxLogoBytes))
		case !bytes.HasPrefix(data, magic) || contentType == "image/webp" && (len(data) < 12 || string(data[8:12]) != "WEBP"):
			return Organisation{}, check.FieldError("logo", "is not a "+contentType+" image")
		}
		ct, body = &contentType, data
	}
	var o Organisation
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		o, err = scan(tx.QueryRow(ctx, setLogoSQL, id, body, ct, s.now()))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("organisation: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("set logo: %w", err)
		}
		return s.audit.Write(ctx, tx, withOrg(a, id), audit.Entry{Action: "organisation.logo", ObjectType: "organisation",
			ObjectID: id.String(), Detail: map[string]any{"bytes": len(body)}})
	})
	return o, err
}

// Logo reads an organisation's logo: anyone of the organisation, and
// operators. Not found when there is none.
func (s *Service) Logo(ctx context.Context, a access.Actor, id uuid.UUID) (Logo, error) {
	if !operator(a) && a.OrgID != id {
		return Logo{}, fmt.Errorf("organisation: %w", access.ErrNotFound)
	}
	var l Logo
	var ct *string
	err := s.pool.QueryRow(ctx, getLogoSQL, id).Scan(&l.Data, &ct, &l.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && (ct == nil || len(l.Data) == 0) {
		return Logo{}, fmt.Errorf("logo: %w", access.ErrNotFound)
	}
	if err != nil {
		return Logo{}, fmt.Errorf("get logo: %w", err)
	}
	l.ContentType = *ct
	return l, nil
}

// scan reads an organisation in columns' order.
func scan(r pgx.Row) (Organisation, error) {
	var o Organisation
	var brandName, primary, accent, qs, qe *string
	var hasLogo bool
	var key []byte
	err := r.Scan(&o.ID, &o.Name, &o.Slug, &brandName, &primary, &accent, &hasLogo, &o.Timezone, &qs, &qe,
		&o.Retention.ReadingsDays, &o.Retention.MessagesDays, &o.Retention.AttachmentsDays, &o.Retention.DeliveriesDays,
		&key, &o.CreatedAt, &o.UpdatedAt)
	if err != nil {
		return o, err
	}
	if key != nil {
		o.RecordKey = &RecordKey{ID: e2ee.RecordKeyID(key), PublicKey: key}
	}
	o.Branding = Branding{Name: o.Name, PrimaryColor: pg.Deref(primary), AccentColor: pg.Deref(accent)}
	if brandName != nil {
		o.Branding.Name = *brandName
	}
	if hasLogo {
		o.Branding.LogoURL = fmt.Sprintf("/v1/organisations/%s/logo?v=%d", o.ID, o.UpdatedAt.UnixMilli())
	}
	if qs != nil && qe != nil {
		o.QuietHours = &QuietHours{Start: *qs, End: *qe}
	}
	return o, nil
}
