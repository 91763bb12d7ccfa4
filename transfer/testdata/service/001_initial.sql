-- +goose Up
-- +goose ENVSUB ON
-- A service's metadata, written once for the three engines; the engine's
-- types come from the environment the test sets (see transfer_test.go).
CREATE TABLE runs (
    id ${AUTO_ID},
    name VARCHAR(200) NOT NULL,
    status VARCHAR(20),
    created_at ${TSTZ} NOT NULL,
    cost DECIMAL(20, 6),
    score DOUBLE PRECISION,
    tags ${JSON}
);
CREATE TABLE tasks (
    run_id BIGINT NOT NULL,
    step VARCHAR(100) NOT NULL,
    started_at ${TSTZ},
    PRIMARY KEY (run_id, step),
    CONSTRAINT tasks_run_fk FOREIGN KEY (run_id) REFERENCES runs (id)
);
CREATE TABLE logs (
    id ${AUTO_ID},
    run_id BIGINT NOT NULL,
    step VARCHAR(100) NOT NULL,
    message TEXT NOT NULL,
    CONSTRAINT logs_task_fk FOREIGN KEY (run_id, step) REFERENCES tasks (run_id, step)
);
CREATE TABLE variables (
    name VARCHAR(200) PRIMARY KEY,
    value TEXT,
    secret ${BOOL} NOT NULL
);
CREATE TABLE artifacts (
    id ${AUTO_ID},
    run_id BIGINT NOT NULL,
    content ${BYTES},
    CONSTRAINT artifacts_run_fk FOREIGN KEY (run_id) REFERENCES runs (id)
);
CREATE TABLE users (
    id ${IDENTITY_ID},
    login VARCHAR(100) NOT NULL,
    email VARCHAR(200),
    manager_id BIGINT,
    CONSTRAINT users_manager_fk FOREIGN KEY (manager_id) REFERENCES users (id)
);
CREATE TABLE teams (
    id BIGINT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    owner_id BIGINT${TEAMS_OWNER_INLINE}
);
CREATE TABLE members (
    id BIGINT PRIMARY KEY,
    team_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    CONSTRAINT members_team_fk FOREIGN KEY (team_id) REFERENCES teams (id),
    CONSTRAINT members_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
);
${TEAMS_OWNER_ALTER};
CREATE TABLE settings (
    k VARCHAR(100) PRIMARY KEY,
    v VARCHAR(200)
);
