package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout of the state file this build reads and
// writes. Open refuses a file with a newer version.
const SchemaVersion = 1

// Bucket and key names. The lead's own buckets (e.g. the file-ID index)
// live beside these in the same file and must not reuse these names.
const (
	bucketMeta     = "meta"
	bucketShares   = "shares"
	bucketUsers    = "users"
	bucketSettings = "settings"
	bucketBond     = "bond" // made on first use too: older files lack it (not checked by checkSchema)

	keySchemaVersion = "schema_version"
	keyNextFSID      = "next_fsid"
	keyNextUID       = "next_uid"
	keyNextFileID    = "next_file_id"
)

// First values of the counters in a new file.
const (
	FirstFSID   = 1
	FirstUID    = 10000
	FirstFileID = 2
)

// lockTimeout is how long Open waits for another process's lock.
const lockTimeout = time.Second

// Store is the configuration and state store. Its methods are safe for
// concurrent use.
type Store struct {
	db   *bbolt.DB
	path string
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) by the next change
}

// Open opens the state file at path, creating it (mode 0600, schema
// version 1) when it does not exist. An existing file is first opened
// read-only and checked; Open refuses, leaving it untouched, a file that is
// not a bbolt database, is corrupt, lacks the meta bucket, has a newer
// schema version, or is locked by another process.
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := create(path, log); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("store: open state file: %w", err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("store: state file %s is not a regular file (%s); check the state directory", path, fi.Mode().Type())
	case fi.Size() == 0:
		return nil, fmt.Errorf("store: state file %s is empty, not a ftnas state database; remove it to start with an empty configuration, or restore it from a backup", path)
	}
	// Check read-only first so a refusal writes nothing.
	if err := verify(path); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, openError(path, err)
	}
	// Check again under the exclusive lock: the file may have been
	// replaced between the read-only check and now.
	if err := db.View(checkSchema(path)); err != nil {
		db.Close()
		return nil, err
	}
	log.Info("state store opened", "path", path, "schema_version", SchemaVersion)
	return &Store{db: db, path: path, log: log, now: time.Now, changed: make(chan struct{})}, nil
}

// Changed returns a channel closed by the next change the store commits
// (of any kind: shares, users, cluster, write generation, bonds). Take it
// before reading what it guards, so no change falls between the two.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// update runs fn in a read-write transaction and, once it committed,
// tells the waiters on Changed.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		return err
	}
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Close closes the file and releases its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// DB returns the underlying database, for callers that keep their own
// buckets in the same file.
func (s *Store) DB() *bbolt.DB { return s.db }

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// create makes a new state file atomically: it is built under a temporary
// name and linked into place, so a crash never leaves a half-made file at
// path. If path appears meanwhile, the existing file wins.
func create(path string, log *slog.Logger) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create state directory: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("store: create state file: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	db, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("store: create state file %s: %w", tmp, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		for _, kv := range []struct {
			k string
			v uint64
		}{
			{keySchemaVersion, SchemaVersion},
			{keyNextFSID, FirstFSID},
			{keyNextUID, FirstUID},
			{keyNextFileID, FirstFileID},
		} {
			if err := meta.Put([]byte(kv.k), u64(kv.v)); err != nil {
				return err
			}
		}
		for _, b := range []string{bucketShares, bucketUsers, bucketSettings, bucketBond} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: initialise state file %s: %w", tmp, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // someone else made it first; verify() judges it
		}
		return fmt.Errorf("store: create state file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	log.Info("state store created", "path", path, "schema_version", SchemaVersion)
	return nil
}

// verify opens path read-only and checks it thoroughly without writing.
func verify(path string) (err error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return openError(path, err)
	}
	defer db.Close()
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	return db.View(func(tx *bbolt.Tx) error {
		var first error
		n := 0
		for cerr := range tx.Check() {
			if first == nil {
				first = cerr
			}
			n++
		}
		if first != nil {
			if n > 1 {
				first = fmt.Errorf("%w (and %d more problems)", first, n-1)
			}
			return corrupt(path, first)
		}
		return checkSchema(path)(tx)
	})
}

func corrupt(path string, err error) error {
	return fmt.Errorf("store: state file %s is corrupt: %v; restore it from a backup, or move it aside to start with an empty configuration", path, err)
}

// openError explains a bbolt.Open failure.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("store: state file %s is in use by another nasd? (no lock within %s); stop the other nasd or use another --state directory: %w", path, lockTimeout, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return fmt.Errorf("store: state file %s is not a bbolt database or is corrupt (%v); restore it from a backup, or move it aside to start with an empty configuration: %w", path, err, err)
	}
	return fmt.Errorf("store: open state file %s: %w", path, err)
}

// checkSchema checks the meta bucket and its schema version.
func checkSchema(path string) func(tx *bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return fmt.Errorf("store: state file %s is a bbolt database but not a ftnas state file (no %q bucket); check the --state directory, or move the file aside", path, bucketMeta)
		}
		raw := meta.Get([]byte(keySchemaVersion))
		if len(raw) != 8 {
			return fmt.Errorf("store: state file %s has no valid schema version; restore it from a backup, or move it aside", path)
		}
		v := binary.BigEndian.Uint64(raw)
		switch {
		case v > SchemaVersion:
			return fmt.Errorf("store: state file %s has schema version %d, newer than this nasd understands (%d); run a newer nasd, or restore a backup made by this version", path, v, SchemaVersion)
		case v < 1:
			return fmt.Errorf("store: state file %s has invalid schema version %d; restore it from a backup, or move it aside", path, v)
		}
		for _, b := range []string{bucketShares, bucketUsers, bucketSettings} {
			if tx.Bucket([]byte(b)) == nil {
				return fmt.Errorf("store: state file %s lacks the %q bucket; restore it from a backup, or move it aside", path, b)
			}
		}
		return nil
	}
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// counter reads the meta counter key, or def when it is unset.
func counter(tx *bbolt.Tx, key string, def uint64) uint64 {
	raw := tx.Bucket([]byte(bucketMeta)).Get([]byte(key))
	if len(raw) != 8 {
		return def
	}
	return binary.BigEndian.Uint64(raw)
}

func setCounter(tx *bbolt.Tx, key string, v uint64) error {
	return tx.Bucket([]byte(bucketMeta)).Put([]byte(key), u64(v))
}

// AllocIDs reserves n consecutive file IDs and returns the first. IDs
// start at 2 and are never handed out twice; the reservation is persisted
// before AllocIDs returns.
func (s *Store) AllocIDs(n uint64) (uint64, error) {
	var first uint64
	err := s.update(func(tx *bbolt.Tx) error {
		var err error
		first, err = AllocIDsTx(tx, n)
		return err
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}

// AllocIDsTx is AllocIDs inside the caller's writable transaction on
// DB(), so IDs can be reserved and used in one commit.
func AllocIDsTx(tx *bbolt.Tx, n uint64) (uint64, error) {
	if n == 0 {
		return 0, fmt.Errorf("%w: allocate file IDs: count is 0", ErrInvalid)
	}
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return 0, fmt.Errorf("store: allocate file IDs: no %q bucket", bucketMeta)
	}
	first := counter(tx, keyNextFileID, FirstFileID)
	if first+n < first {
		return 0, fmt.Errorf("store: allocate %d file IDs: the counter would overflow", n)
	}
	if err := setCounter(tx, keyNextFileID, first+n); err != nil {
		return 0, fmt.Errorf("store: allocate file IDs: %w", err)
	}
	return first, nil
}

// Setting returns the value of a setting and whether it is set.
func (s *Store) Setting(key string) (string, bool, error) {
	if err := ValidateSettingKey(key); err != nil {
		return "", false, err
	}
	var v []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if raw := tx.Bucket([]byte(bucketSettings)).Get([]byte(key)); raw != nil {
			v = append([]byte{}, raw...)
		}
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("store: read setting %q: %w", key, err)
	}
	return string(v), v != nil, nil
}

// SetSetting sets a setting.
func (s *Store) SetSetting(key, value string) error {
	if err := ValidateSettingKey(key); err != nil {
		return err
	}
	err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSettings)).Put([]byte(key), []byte(value))
	})
	if err != nil {
		return fmt.Errorf("store: write setting %q: %w", key, err)
	}
	return nil
}

// DeleteSetting removes a setting; removing an unset one is not an error.
func (s *Store) DeleteSetting(key string) error {
	if err := ValidateSettingKey(key); err != nil {
		return err
	}
	err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSettings)).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("store: delete setting %q: %w", key, err)
	}
	return nil
}
