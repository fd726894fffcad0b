// The translation unit of a precompiled-header holder (parley_pch): its header is all it has.
