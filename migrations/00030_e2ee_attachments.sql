-- +goose Up
-- Encrypted attachments of end-to-end encrypted threads (docs/e2ee.md,
-- "Attachments"): the client uploads the file's ciphertext, which the server
-- stores (sealed at rest like any attachment) as application/vnd.tend.encrypted,
-- never knowing the file's type or name.
ALTER TABLE attachments DROP CONSTRAINT attachments_content_type_check;
ALTER TABLE attachments ADD CONSTRAINT attachments_content_type_check CHECK (content_type IN (
    'image/jpeg', 'image/png', 'image/heic', 'application/pdf',
    'audio/mp4', 'audio/ogg', 'audio/mpeg', 'video/mp4', 'video/webm',
    'application/vnd.tend.encrypted'));

-- +goose Down
DELETE FROM attachment_blobs WHERE attachment_id IN (SELECT id FROM attachments WHERE content_type = 'application/vnd.tend.encrypted');
DELETE FROM attachments WHERE content_type = 'application/vnd.tend.encrypted';
ALTER TABLE attachments DROP CONSTRAINT attachments_content_type_check;
ALTER TABLE attachments ADD CONSTRAINT attachments_content_type_check CHECK (content_type IN (
    'image/jpeg', 'image/png', 'image/heic', 'application/pdf',
    'audio/mp4', 'audio/ogg', 'audio/mpeg', 'video/mp4', 'video/webm'));
