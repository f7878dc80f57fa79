package secretstrength

// WordsShare is wordsShare, for the tests.
var WordsShare = wordsShare
