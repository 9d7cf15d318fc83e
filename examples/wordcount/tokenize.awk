# One lower-cased word per output line. Words are runs of letters, digits
# and apostrophes; everything else separates them.
{
    line = tolower($0)
    gsub(/[^a-z0-9']+/, " ", line)
    n = split(line, words, " ")
    for (i = 1; i <= n; i++)
        print words[i]
}
