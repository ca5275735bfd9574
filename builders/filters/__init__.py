"""Row checks that return (keep, reason): generation checks, quality, language, repetition, decontamination."""
