"""note update authors: a logged row holds a group-commit window, written by several people

Revision ID: 74a226b4520f
Revises: 0d5ee6401b3d
Create Date: 2026-11-23 02:49:42.176228

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '74a226b4520f'
down_revision = '0d5ee6401b3d'
branch_labels = None
depends_on = None

# A batch operation recreates the table on SQLite; AUTOINCREMENT must survive it, or SQLite
# would reuse the seqs of compacted rows (see the model).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}

note_update = sa.table(
    'note_update',
    sa.column('seq', sa.Integer()),
    sa.column('user_id', sa.Integer()),
    sa.column('author_ids', sa.JSON()),
)


def upgrade():
    with op.batch_alter_table('note_update', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('author_ids', sa.JSON(), nullable=True))
    connection = op.get_bind()
    for seq, user_id in connection.execute(sa.select(note_update.c.seq, note_update.c.user_id)).all():
        connection.execute(
            note_update.update()
            .where(note_update.c.seq == seq)
            .values(author_ids=[user_id] if user_id is not None else [])
        )
    with op.batch_alter_table('note_update', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.alter_column('author_ids', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_note_update_user_id_user'), type_='foreignkey')
        batch_op.drop_column('user_id')


def downgrade():
    with op.batch_alter_table('note_update', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.INTEGER(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_note_update_user_id_user'), 'user', ['user_id'], ['id'])
    connection = op.get_bind()
    for seq, author_ids in connection.execute(sa.select(note_update.c.seq, note_update.c.author_ids)).all():
        if author_ids:
            connection.execute(
                note_update.update().where(note_update.c.seq == seq).values(user_id=author_ids[0])
            )
    with op.batch_alter_table('note_update', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('author_ids')
