"""The cloud service marketplace: the shell every domain package builds on."""
