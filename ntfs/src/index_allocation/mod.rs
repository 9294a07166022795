//! $INDEX_ALLOCATION: the non-resident INDX blocks below an $INDEX_ROOT.

pub mod index_record;
