-- 0084: a device's own blob need not rest on reference windows.  A fleet's
-- machines may turn at different speeds: a few-shot model on the envelope
-- set reads every window at its own machine's defect frequencies, and a
-- device that turns otherwise than the model's blob says gets a blob of
-- its own even without reference windows (the model's center, its own
-- shaft speed and bearing: schema/MODEL.md).  Reference windows still
-- always come with a blob.
ALTER TABLE model_device_refs DROP CONSTRAINT model_device_refs_check;
ALTER TABLE model_device_refs ADD CONSTRAINT model_device_refs_blob_check
    CHECK (blob IS NOT NULL OR reference_windows = 0);
