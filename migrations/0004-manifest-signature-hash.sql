-- An outstanding manifest is a bearer credential: whoever holds it can register it. Keep only a
-- digest of its signature (what a registration is checked against), never the signature itself.
ALTER TABLE manifests ADD COLUMN signature_hash BLOB;
UPDATE manifests
SET signature_hash = warden_sha256(json_extract(body, '$.signature')),
    body = json_remove(body, '$.signature')
WHERE json_extract(body, '$.signature') IS NOT NULL;
